"""Hostile input files against the batch books: every count is the test's own count of the input.

Each test builds a file a careless or hostile producer could send, counts its records itself
(Python's ``csv`` module, line counts, ``zlib``) and checks the run's ``records in`` (the
file reader's count) against that count, and that ``loaded + dead letters + duplicates``
accounts for every one of them.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import zlib
from pathlib import Path

import duckdb
import orjson
import pytest

from beam_ecommerce import cli
from beam_ecommerce.io.files import OVERSIZED_PREFIX_BYTES
from beam_ecommerce.pipelines import batch
from beam_ecommerce.records import RawRecord
from beam_ecommerce.records.dead_letter import MAX_MESSAGE_CHARS, RunContext, dead_letter_row
from beam_ecommerce.schemas import csv_columns
from beam_ecommerce.transforms import process
from tests.reliability.support import batch_args
from tests.samples import EVENT_TYPES, sample_event

pytestmark = pytest.mark.timeout(600)


def _events(count: int, prefix: str = "evt") -> list[dict]:
    return [sample_event(EVENT_TYPES[i % len(EVENT_TYPES)], f"{prefix}-{i:06d}") for i in range(count)]


def _jsonl(events: list[dict]) -> bytes:
    return b"".join(orjson.dumps(event) + b"\n" for event in events)


def _csv_rows(events: list[dict]) -> list[list[str]]:
    def cell(value) -> str:
        return "" if value is None else orjson.dumps(value).decode() if isinstance(value, list) else str(value)

    return [[cell(event.get(column)) for column in csv_columns()] for event in events]


def _run(tmp_path: Path, pattern: Path, *extra: str):
    return batch.run(batch_args(str(pattern), tmp_path / "wh" / "w.duckdb", *extra))


def _dead_letters(tmp_path: Path) -> list[dict]:
    con = duckdb.connect(str(tmp_path / "wh" / "w.duckdb"), read_only=True)
    try:
        cursor = con.execute(
            "SELECT source, stage, error_type, errorMessage, payloadBytes, attributes, event_id FROM dead_letter"
        )
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def _books(summary) -> tuple[int, int]:
    return summary.records_in, summary.rows_loaded + summary.dead_letters + summary.duplicates


def test_a_truncated_gzip_fails_the_run_naming_the_file_and_offset_and_still_loads_what_it_had(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    whole = gzip.compress(_jsonl(_events(200)))
    cut = whole[: len(whole) * 2 // 3]
    path = tmp_path / "in" / "cut.jsonl.gz"
    path.write_bytes(cut)
    readable = zlib.decompressobj(wbits=31).decompress(cut)
    # Every complete line, the cut-off last line, and one record standing for the unreadable rest.
    expected = readable.count(b"\n") + (not readable.endswith(b"\n")) + 1

    summary = _run(tmp_path, path)

    assert _books(summary) == (expected, expected)
    assert summary.lost == 0
    assert summary.rows_loaded == readable.count(b"\n")
    assert summary.read_failures == (f"{path}@{len(cut)}",)
    assert not summary.reconciles
    args = batch_args(str(path), tmp_path / "wh2" / "w.duckdb")
    assert cli.main(["batch", *args]) == 1
    assert f"{path}@{len(cut)}" in capsys.readouterr().out


@pytest.mark.parametrize(("core", "step"), [("fast", process.RunFastCore), ("reference", process.RunStages)])
def test_a_record_dropped_on_purpose_shows_as_lost_and_fails_the_run(tmp_path, monkeypatch, core, step):
    """A stand-in for a bug in the core: the core's step swallows the first record of every batch."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "e.jsonl").write_bytes(_jsonl(_events(30)))
    original = step.process

    def swallow_one(self, batch):
        return original(self, type(batch)(batch[1:]))

    monkeypatch.setattr(step, "process", swallow_one)
    summary = _run(tmp_path, tmp_path / "in" / "e.jsonl", "--batch_size=1000", f"--core={core}")

    assert summary.records_in == 30
    assert summary.rows_loaded == 29
    assert summary.lost == 1
    assert not summary.reconciles
    assert "1 lost" in summary.reconciliation_line()


def test_a_stray_quote_inside_a_csv_field_hides_no_row(tmp_path):
    (tmp_path / "in").mkdir()
    rows = _csv_rows(_events(20))
    rows[1][csv_columns().index("page_url")] = 'a"b'  # a quote inside an unquoted field is text (RFC 4180)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(csv_columns())
    writer.writerows(rows)
    data = text.getvalue().replace('"a""b"', 'a"b')  # the producer did not escape it
    (tmp_path / "in" / "e.csv").write_text(data)
    records = len(list(csv.reader(io.StringIO(data)))) - 1

    summary = _run(tmp_path, tmp_path / "in" / "e.csv")

    assert records == 20
    assert _books(summary) == (records, records)
    assert summary.reconciles


def test_a_stray_opening_quote_in_a_csv_costs_one_row_not_the_rest_of_the_file(tmp_path):
    (tmp_path / "in").mkdir()
    rows = _csv_rows([sample_event("page_view", f"pv-{i:06d}") for i in range(20)])
    lines = [",".join(csv_columns())] + [",".join(row) for row in rows]  # page views need no quoting
    lines[2] = lines[2].replace(",", ',"', 1)  # the second row opens a quoted field it never closes
    data = "\n".join(lines) + "\n"
    (tmp_path / "in" / "e.csv").write_text(data)

    summary = _run(tmp_path, tmp_path / "in" / "e.csv")

    assert _books(summary) == (20, 20)  # one record per line: the joined row did not parse
    assert summary.rows_loaded == 19
    [dead] = _dead_letters(tmp_path)
    assert dead["source"].endswith("e.csv:3")


def test_an_excel_csv_with_quoted_header_bom_and_crlf_loads_every_row(tmp_path):
    (tmp_path / "in").mkdir()
    events = _events(25)
    rows = _csv_rows(events)
    rows[EVENT_TYPES.index("page_view")][csv_columns().index("page_url")] = '/p/"quoted",\r\nand on two lines'
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(csv_columns())
    writer.writerows(rows)
    (tmp_path / "in" / "e.csv").write_bytes(b"\xef\xbb\xbf" + text.getvalue().encode())
    records = len(list(csv.reader(io.StringIO(text.getvalue())))) - 1

    summary = _run(tmp_path, tmp_path / "in" / "e.csv")

    assert _books(summary) == (records, records) == (25, 25)
    assert summary.dead_letters_by_reason == {}
    assert summary.rows_loaded == 25


def test_a_line_over_the_record_limit_is_a_dead_letter_with_its_length_digest_and_prefix(tmp_path):
    (tmp_path / "in").mkdir()
    huge = orjson.dumps({"event_id": "x" * (50 << 20)})  # a 50 MB line
    events = _events(40)
    path = tmp_path / "in" / "e.jsonl"
    path.write_bytes(_jsonl(events[:20]) + huge + b"\n" + _jsonl(events[20:]))
    records = path.read_bytes().count(b"\n")

    summary = _run(tmp_path, path)

    assert _books(summary) == (records, records) == (41, 41)
    assert summary.dead_letters_by_reason == {"parse.record_too_large": 1}
    [dead] = _dead_letters(tmp_path)
    assert dead["source"].endswith("e.jsonl:21")
    assert bytes(dead["payloadBytes"]) == huge[:OVERSIZED_PREFIX_BYTES]
    assert str(len(huge)) in dead["errorMessage"]
    assert hashlib.sha256(huge).hexdigest() in dead["errorMessage"]


def test_records_just_under_the_limit_load_with_no_size_ceiling_in_the_load(tmp_path):
    """Two 8 MiB records of control characters (invalid JSON) stage as dead letters of about 60 MB
    each (JSON escapes each byte as ``\\u0001``): far over DuckDB's default 16 MiB
    ``maximum_object_size``, which once failed the whole load."""
    (tmp_path / "in").mkdir()
    bad = [b'{"event_id": "big-%d", "x": "' % i + b"\x01" * (8 << 20) + b'"}' for i in range(2)]
    path = tmp_path / "in" / "e.jsonl"
    path.write_bytes(_jsonl(_events(10)) + b"\n".join(bad) + b"\n")

    summary = _run(tmp_path, path)

    assert _books(summary) == (12, 12)
    assert summary.rows_loaded == 10
    assert sorted(len(d["payloadBytes"]) for d in _dead_letters(tmp_path)) == sorted(map(len, bad))


def test_a_long_field_and_a_deep_nesting_become_dead_letters(tmp_path):
    (tmp_path / "in").mkdir()
    long_id = sample_event("page_view", "a" * 100_000)
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    path = tmp_path / "in" / "e.jsonl"
    path.write_bytes(_jsonl(_events(10)) + orjson.dumps(long_id) + b"\n" + deep + b"\n")

    summary = _run(tmp_path, path)

    assert _books(summary) == (12, 12)
    assert summary.rows_loaded == 10
    by_source = {d["source"].rsplit(":", 1)[1]: d for d in _dead_letters(tmp_path)}
    assert by_source["12"]["error_type"] == "invalid_json"
    assert len(by_source["11"]["event_id"]) < 10_000  # the message columns are bounded


def test_redaction_scans_a_bounded_prefix_and_never_leaks_half_an_address():
    """Linear: a 10 MB word is cut, then scanned (the old pattern took 52 s on 100k characters)."""
    record = RawRecord(b"x", "f:1")
    context = RunContext("r", "v")
    word = "a" * 10_000_000
    row = dead_letter_row(record, context, "parse", "t", word, event={"event_id": word})
    assert row["event_id"] == row["errorMessage"] == "… [cut: 10000000 characters]"
    message = "user jane.doe@example.com from 203.0.113.7 said " + "b" * (MAX_MESSAGE_CHARS - 60) + " joe@exa"
    message += "mple.com" * 1000
    redacted = dead_letter_row(record, context, "parse", "t", message)["errorMessage"]
    assert redacted.startswith("user <redacted> from <redacted> said b")
    assert "joe" not in redacted and "@" not in redacted
    assert redacted.endswith(f"… [cut: {len(message)} characters]")
