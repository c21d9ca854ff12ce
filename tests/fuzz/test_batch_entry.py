"""Poison inputs through the batch entry point: files written here, ``ReadEventFiles``, then the core.

For every record of every file (JSONL and CSV, plain, gzip and gzip cut short, LF and
CRLF, with a BOM, split into small ranges): no crash, exactly one destination (a row or
a dead letter), and a dead letter holds the record's bytes and enough to rebuild the
record (``original_record``). The records a file holds are found again from its bytes
alone: one per physical line for JSONL, a run of whole lines per CSV record, each line
without its terminator (``\\n``, or ``\\r\\n``: the reader drops one ``\\r`` per line).
"""

from __future__ import annotations

import gzip
import math
import tempfile
from collections import Counter
from pathlib import Path

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from beam_ecommerce.io.files import ReadEventFiles
from beam_ecommerce.records import CSV
from beam_ecommerce.records.dead_letter import original_payload, original_record
from beam_ecommerce.schemas import csv_columns
from beam_ecommerce.transforms import ProcessEvents, RunContext
from tests.fuzz.poison import BOM, csv_records, json_payloads

CONTEXT = RunContext("fuzz-batch", "test")
PLAIN, GZIP, CUT_GZIP = "plain", "gzip", "cut_gzip"


def physical_lines(content: bytes) -> list[bytes]:
    """The lines of ``content`` without their terminators, as a line-oriented reader must see them."""
    if not content:
        return []
    lines = content.split(b"\n")
    if content.endswith(b"\n"):
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


@st.composite
def files(draw, records, fmt: str):
    """``(content, compression, cut, valid payloads)``: one file of drawn records."""
    drawn = draw(st.lists(records, max_size=25))
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    head = (BOM if draw(st.booleans()) else b"") + (",".join(csv_columns()).encode() + newline if fmt == CSV else b"")
    body = newline.join(payload for _, payload in drawn)
    content = head + body + (newline if drawn and draw(st.booleans()) else b"")
    compression = draw(st.sampled_from([PLAIN, GZIP, CUT_GZIP]))
    cut = draw(st.floats(0.0, 0.95))  # 0.0: cut inside the gzip header
    return content, compression, cut, {payload for kind, payload in drawn if kind == "valid"}


def _write(path: Path, content: bytes, compression: str, cut: float) -> None:
    if compression == PLAIN:
        path.write_bytes(content)
        return
    data = gzip.compress(content)
    path.with_name(path.name + ".gz").write_bytes(data if compression == GZIP else data[: max(1, int(len(data) * cut))])


def _observed(dead_or_row: tuple[str, dict]) -> tuple:
    """``(kind, source, payload, reason, format or newlines)`` of one output of the core."""
    kind, element = dead_or_row
    if kind == "row":
        assert all(math.isfinite(v) for v in element.values() if isinstance(v, float)), "a row carries NaN or inf"
        # A CSV record spans one line more than its values hold newlines (quoted fields may hold them).
        newlines = sum(v.count("\n") for v in element.values() if isinstance(v, str))
        return ("row", element["source"], None, None, newlines)
    record = original_record(element)
    assert record.payload == original_payload(element)
    return ("dead", element["source"], record.payload, element["error_type"], record.format)


def _check(expected: dict, valid: dict, observed: list[tuple]) -> None:
    """Every record once, in line order without gaps, dead letters with their bytes, valid events as rows.

    A file cut short ends in exactly one read error after its last record, which may be cut too.
    """
    by_source = Counter(source for _, source, *_ in observed)
    assert all(n == 1 for n in by_source.values()), f"in two places: {[s for s, n in by_source.items() if n > 1]}"
    for path, (fmt, lines, cut) in expected.items():
        mine = sorted(
            (int(source.rsplit(":", 1)[1]), kind, payload, reason, extra)
            for kind, source, payload, reason, extra in observed
            if source.rsplit(":", 1)[0] == path
        )
        if cut:
            errors = [m for m in mine if m[3] == "unreadable_input"]
            assert len(errors) == 1 and errors[0][2] == b"", f"{path}: a cut file ends in one read error: {errors}"
            assert errors[0] == mine[-1], f"{path}: the read error comes after every record"
            mine = mine[:-1]
        line = 2 if fmt == CSV else 1  # a CSV file's first line is its header
        for index, (number, kind, payload, _, extra) in enumerate(mine):
            last = index == len(mine) - 1
            assert number == line, f"{path}: a record at line {number}, expected one at line {line}"
            if kind == "dead":
                span = payload.count(b"\n") + 1
                whole = b"\n".join(lines[line - 1 : line - 1 + span])
                assert payload == whole or (cut and last and whole.startswith(payload)), f"{path}:{number} bytes"
                assert extra == fmt, f"{path}:{number}: its dead letter says format {extra}"
            else:
                span = 1 + (extra if fmt == CSV else 0)
                whole = b"\n".join(lines[line - 1 : line - 1 + span])
            if whole in valid[path] and not (cut and last):
                assert kind == "row", f"{path}:{number}: a valid event went to the dead letter"
            line += span
        if not cut:
            assert line == len(lines) + 1, f"{path}: records end at line {line - 1} of {len(lines)}"


@settings(
    max_examples=12,
    deadline=None,
    # Each example runs a pipeline: shrinking a failure would take minutes; the failing example is printed whole.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(
    jsonl=files(json_payloads(), "json"),
    csv_file=files(csv_records(), CSV),
    split_bytes=st.integers(64, 4096),
    batch_size=st.integers(1, 40),
)
def test_every_record_of_every_file_lands_once_with_its_bytes(jsonl, csv_file, split_bytes, batch_size):
    with tempfile.TemporaryDirectory() as directory:
        expected, valid = {}, {}
        for name, fmt, (content, compression, cut, valid_payloads) in (
            ("events.jsonl", "json", jsonl),
            ("events.csv", CSV, csv_file),
        ):
            path = Path(directory) / name
            _write(path, content, compression, cut)
            written = str(path) + ("" if compression == PLAIN else ".gz")
            expected[written] = (fmt, physical_lines(content), compression == CUT_GZIP)
            valid[written] = valid_payloads
        pipeline = TestPipeline()
        batches = pipeline | ReadEventFiles(f"{directory}/events*", batch_size=batch_size, split_bytes=split_bytes)
        processed = batches | ProcessEvents(CONTEXT, "fuzz-key")
        rows = processed.rows | "Rows" >> beam.FlatMap(lambda batch: [("row", row) for row in batch])
        dead = processed.dead_letters | "Dead" >> beam.Map(lambda d: ("dead", d))
        observed = (rows, dead) | beam.Flatten() | beam.Map(_observed)
        assert_that(observed, lambda actual: _check(expected, valid, actual))
        pipeline.run()
