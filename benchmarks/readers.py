"""The file reader alone, no runner: bytes on disk -> batches of ``RawRecord``, CPU µs per record.

    python -m benchmarks.readers --events 300000

Runs the reader's DoFn (``_ReadRange``: read, split lines, find CSV rows, build records,
batch them) directly on whole files, the way a worker runs it, for the code in this
checkout and for a named baseline: ``io/files.py`` as it is at ``--baseline`` (default: main
before the reader's fast paths, issue 13), taken with ``git show`` and loaded at run time
as a temporary module.
Inputs, made once in ``--workdir`` from the generator (seed 7, its default malformed
records and duplicates):

- **JSONL** as the generator writes it;
- **CSV (generator)**: the generator's CSV, quoted where a cell needs it (about 1.5 % of lines hold a ``"``);
- **CSV (no quotes)**: the same rows less those holding a ``"``;
- **CSV (Excel)**: the same rows written as Excel does: every cell quoted, CRLF, a UTF-8 BOM.

Printed per input: records, CPU µs per record for the baseline and this checkout (best of
``--rounds``), and the ratio; both must read the same records, which is checked before timing.
"""

from __future__ import annotations

import argparse
import csv
import glob
import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from types import ModuleType

from beam_ecommerce.io import files
from beam_ecommerce.io.files import read as files_read
from beam_ecommerce.records import DEFAULT_BATCH_SIZE, DEFAULT_MAX_RECORD_BYTES, RawBatch
from benchmarks.core import SEED, cpu_seconds

REPO = Path(__file__).resolve().parents[1]
# main before the reader's fast paths (issue 13): a commit, not ``main``, which holds them once merged.
BASELINE = "47974cf32a081c6122c02e7821d4fdc092724696"
BATCH_SIZE = DEFAULT_BATCH_SIZE  # the pipelines' --batch_size


def baseline_module(ref: str, workdir: str) -> ModuleType:
    """``beam_ecommerce/io/files.py`` as it is at ``ref``, imported from a temporary copy."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{ref}:beam_ecommerce/io/files.py"], check=True, capture_output=True
    ).stdout
    path = Path(workdir) / "files_baseline.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("_readers_baseline_files", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def generated(events: int, fmt: str, workdir: str) -> list[str]:
    """The generator's event files in ``fmt`` (``jsonl`` or ``csv``), written once."""
    folder = f"{workdir}/readers-{events}-{fmt}"
    if not glob.glob(f"{folder}/events-*.{fmt}"):
        generate = ["-m", "beam_ecommerce.cli", "generate", "-q", f"--num-events={events}", f"--seed={SEED}"]
        subprocess.run([sys.executable, *generate, f"--format={fmt}", f"--output={folder}"], check=True)
    return sorted(glob.glob(f"{folder}/events-*.{fmt}"))


def rewritten_csv(paths: list[str], folder: str, excel: bool) -> list[str]:
    """``paths`` rewritten: Excel-style (QUOTE_ALL, CRLF, BOM), or without the lines that hold a ``"``."""
    os.makedirs(folder, exist_ok=True)
    out = []
    for path in paths:
        target = os.path.join(folder, os.path.basename(path))
        out.append(target)
        if os.path.exists(target):
            continue
        if excel:
            text = {"newline": "", "errors": "surrogateescape"}  # the generator's malformed lines stay as bytes
            with (
                open(path, encoding="utf-8", **text) as source,
                open(target, "w", encoding="utf-8-sig", **text) as sink,
            ):
                csv.writer(sink, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(csv.reader(source))
        else:
            with open(path, "rb") as source, open(target, "wb") as sink:
                sink.writelines(line for line in source if b'"' not in line)
    return out


def batches(module: ModuleType, paths: list[str]) -> Iterator[RawBatch]:
    """The batches ``module``'s reader DoFn makes of ``paths`` (one range per file)."""
    # The baseline is the one-module reader (``_ReadRange``); this checkout's is ``io.files.read.ReadRange``.
    read_range = getattr(module, "_ReadRange", None) or files_read.ReadRange
    dofn = read_range(BATCH_SIZE, DEFAULT_MAX_RECORD_BYTES)
    dofn.setup()
    for path in paths:
        yield from dofn.process(module.FileRange(path, module.detect_format(path), False, size=os.path.getsize(path)))


def count(module: ModuleType, paths: list[str]) -> int:
    """Records read, each batch dropped once counted, as a consumer downstream would."""
    return sum(map(len, batches(module, paths)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default=BASELINE, help="git ref whose io/files.py is the baseline")
    parser.add_argument("--workdir", default="benchmarks/results")
    args = parser.parse_args()
    workdir = os.path.abspath(args.workdir)
    plain = generated(args.events, "csv", workdir)
    inputs = {
        "JSONL": generated(args.events, "jsonl", workdir),
        "CSV (generator)": plain,
        "CSV (no quotes)": rewritten_csv(plain, f"{workdir}/readers-{args.events}-csv-plain", excel=False),
        "CSV (Excel)": rewritten_csv(plain, f"{workdir}/readers-{args.events}-csv-excel", excel=True),
    }
    with tempfile.TemporaryDirectory() as temp:
        baseline = baseline_module(args.baseline, temp)
    print(f"reader DoFn alone, batches of {BATCH_SIZE}, CPU time, best of {args.rounds}; baseline {args.baseline[:12]}")
    print(f"{'input':<18}{'records':>10}{'baseline µs/rec':>17}{'this µs/rec':>13}{'speed-up':>10}")
    for name, paths in inputs.items():
        records = list(chain.from_iterable(batches(files, paths)))
        if records != list(chain.from_iterable(batches(baseline, paths))):
            raise SystemExit(f"{name}: this reader's records differ from the baseline's")
        del records  # not held while timing: live records make the collector's work grow
        before = cpu_seconds(lambda paths=paths: count(baseline, paths), args.rounds)
        after = cpu_seconds(lambda paths=paths: count(files, paths), args.rounds)
        total = count(files, paths)
        print(f"{name:<18}{total:>10,}{before / total * 1e6:>17.2f}{after / total * 1e6:>13.2f}{before / after:>9.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
