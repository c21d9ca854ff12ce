"""The transform core alone, no runner: records in memory -> rows and dead letters, CPU time per event.

    python -m benchmarks.core --events 300000

Runs the core's DoFn directly on batches of ``RawRecord`` built from the generator's
JSONL (seed 7, 2 % malformed, 1 % duplicates), the way a worker runs it, with no Beam
runner around it: the figure a Dataflow worker pays per event, whatever the runner adds.
Contenders, side by side on the same batches, each run ``--rounds`` times (best kept):

- **reference core** (``RunStages``): today's stages record by record, the named baseline;
- **fast core** (``RunFastCore``): the contract's generated msgspec decoders and batch enrichment,
  its rows as dicts (what BigQuery's sink and the stream take);
- **fast core, typed rows** (``RunFastCore(typed_rows=True)``): its rows left as the decoder's
  structs, as the local batch hands them to the DuckDB sink, which encodes both alike.

Printed per contender: CPU µs per event, the ratio to the reference, and Dataflow
vCPU-hours per billion events for the core's CPU alone (µs/event x 1e9 / 3.6e9).
``--profile`` prints cProfile's top functions of the fast core.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import glob
import os
import pstats
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial

from beam_ecommerce.records import DEFAULT_BATCH_SIZE, RawBatch, RawRecord
from beam_ecommerce.records.dead_letter import RunContext
from beam_ecommerce.transforms.process import RunFastCore, RunStages, core_stages

SEED = 7
BATCH_SIZE = DEFAULT_BATCH_SIZE  # the pipelines' --batch_size
CONTEXT = RunContext("benchmark", "benchmark")
CONTENDERS: dict[str, Callable[[list], RunStages]] = {
    "reference core (today's stages, record by record)": RunStages,
    "fast core (generated msgspec decoders)": RunFastCore,
    "fast core, typed rows (the DuckDB sink's)": partial(RunFastCore, typed_rows=True),
}


def input_batches(events: int, workdir: str) -> list[RawBatch]:
    """The generator's records as the file source batches them (``file:line`` sources)."""
    data = f"{workdir}/core-{events}"
    if not glob.glob(f"{data}/events-*.jsonl"):
        generate = ["-m", "beam_ecommerce.cli", "generate", "-q", f"--num-events={events}", f"--seed={SEED}"]
        subprocess.run([sys.executable, *generate, f"--output={data}"], check=True)
    records = []
    for path in sorted(glob.glob(f"{data}/events-*.jsonl")):
        with open(path, "rb") as lines:
            records += [RawRecord(line.rstrip(b"\n"), f"{path}:{n}") for n, line in enumerate(lines, 1)]
    return [RawBatch(records[i : i + BATCH_SIZE]) for i in range(0, len(records), BATCH_SIZE)]


def new_core(core: Callable[[list], RunStages]) -> RunStages:
    dofn = core(core_stages(CONTEXT, "benchmark"))
    dofn.setup()
    return dofn


def run_core(dofn: RunStages, batches: list[RawBatch]) -> tuple[int, int]:
    """Rows and dead letters out of ``batches``."""
    rows = dead = 0
    for batch in batches:
        for output in dofn.process(batch):
            if isinstance(output, list):
                rows += len(output)
            else:
                dead += 1
    return rows, dead


def cpu_seconds(run: Callable[[], object], rounds: int) -> float:
    """Best CPU time of ``rounds`` runs, the collector on as in a worker."""
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", default="benchmarks/results")
    parser.add_argument("--profile", action="store_true", help="Also print the fast core's cProfile top 25.")
    args = parser.parse_args()
    batches = input_batches(args.events, os.path.abspath(args.workdir))
    events = sum(map(len, batches))
    print(f"{events:,} records in batches of {BATCH_SIZE}, CPU time, best of {args.rounds}")
    print(f"{'contender':<52}{'rows':>10}{'dead':>8}{'µs/event':>10}{'vs reference':>14}{'vCPU-h/1e9':>12}")
    reference = None
    for name, core in CONTENDERS.items():
        dofn = new_core(core)
        rows, dead = run_core(dofn, batches)
        micros = cpu_seconds(lambda dofn=dofn: run_core(dofn, batches), args.rounds) / events * 1e6
        reference = reference or micros
        ratio = f"{reference / micros:.2f}x"
        print(f"{name:<52}{rows:>10,}{dead:>8,}{micros:>10.2f}{ratio:>14}{micros * 1e9 / 1e6 / 3600:>12.2f}")
    if args.profile:
        dofn = new_core(RunFastCore)
        profile = cProfile.Profile()
        profile.runcall(run_core, dofn, batches)
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
