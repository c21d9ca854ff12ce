"""``beam-ecommerce generate`` against a named baseline: the same command from another checkout.

    python -m benchmarks.generator --baseline /path/to/main --events 1000000 --rounds 3

Each round runs this tree's generator and the baseline's, one after the other, as the
user would (a fresh process, imports and start-up included; 1M clean JSONL events at
seed 7, as ``benchmarks.run`` makes its input). A process's CPU time (user + sys, from
``wait4``) is what it cost whatever else the machine was doing; its wall time is what a
user waits for on this machine now. Both are reported, the fastest round of each kept,
with the ratio to the baseline, and the two outputs are checked to be the same bytes.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

SEED = 7


@dataclass(frozen=True)
class Run:
    wall_seconds: float
    cpu_seconds: float


def generate(tree: str, events: int, output: str) -> Run:
    """One ``generate`` of ``events`` into ``output`` with the code of checkout ``tree``."""
    argv = [sys.executable, "-m", "beam_ecommerce.cli", "generate", "-q"]
    argv += [f"--num-events={events}", f"--seed={SEED}", "--invalid-rate=0", f"--output={output}"]
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
    started = time.perf_counter()
    # In the tree's own folder: ``-m`` puts the working folder first on the import path, before PYTHONPATH.
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tree)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
        raise RuntimeError(f"generate from {tree} failed:\n{stderr[-3000:]}")
    return Run(wall, usage.ru_utime + usage.ru_stime)


def same_files(left: str, right: str) -> bool:
    """Whether two output folders hold the same file names with the same bytes."""
    names = sorted(os.listdir(left))
    if names != sorted(os.listdir(right)):
        return False
    _, mismatch, errors = filecmp.cmpfiles(left, right, names, shallow=False)
    return not mismatch and not errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="a checkout of the baseline code (e.g. the main branch)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the fastest of each is kept")
    args = parser.parse_args()
    trees = {"this tree": os.getcwd(), "baseline": args.baseline}
    runs: dict[str, list[Run]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(args.rounds):
            for name, tree in trees.items():
                output = os.path.join(workdir, name)
                shutil.rmtree(output, ignore_errors=True)
                runs[name].append(generate(tree, args.events, output))
        identical = same_files(*(os.path.join(workdir, name) for name in trees))
    best = {
        name: Run(min(run.wall_seconds for run in each), min(run.cpu_seconds for run in each))
        for name, each in runs.items()
    }
    base = best["baseline"]
    print(f"{'generate':<12}{'events':>11}{'wall s':>9}{'ev/s wall':>11}", end="")
    print(f"{'CPU s':>8}{'ev/s CPU':>11}{'vs baseline (CPU)':>19}")
    for name, run in best.items():
        print(
            f"{name:<12}{args.events:>11,}{run.wall_seconds:>9.2f}{args.events / run.wall_seconds:>11,.0f}"
            f"{run.cpu_seconds:>8.2f}{args.events / run.cpu_seconds:>11,.0f}"
            f"{base.cpu_seconds / run.cpu_seconds:>18.2f}x"
        )
    print(f"outputs: {'the same bytes' if identical else 'DIFFERENT'}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
