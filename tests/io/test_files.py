import csv
import gzip
import io

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_ecommerce.io.files import ReadEventFiles, csv_rows, detect_format, ranges, raw_records, split_points
from beam_ecommerce.io.files import lines as file_lines
from beam_ecommerce.transforms.parse import READ_ERROR_ATTRIBUTE


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=60),
    st.booleans(),
    st.integers(1, 120),
    st.integers(1, 50),
)
def test_split_points_cut_at_line_starts_with_true_line_numbers(lines, trailing_newline, split_bytes, chunk):
    data = b"\n".join(lines) + (b"\n" if trailing_newline and lines else b"")
    ranges.CHUNK_BYTES, saved = chunk, ranges.CHUNK_BYTES
    try:
        points = list(split_points(io.BytesIO(data), split_bytes, len(data)))
    finally:
        ranges.CHUNK_BYTES = saved
    # Before the end, the line start after the first newline at or past each boundary.
    starts = [i + 1 for i, byte in enumerate(data) if byte == ord("\n") and i + 1 < len(data)]
    expected, cut = [], split_bytes
    for start in starts:
        if start > cut:
            expected.append((start, data[:start].count(b"\n") + 1))
            cut = start + split_bytes
    assert points == expected


@given(st.integers(1, 10**13), st.integers(1, 10**10))
def test_even_split_bytes_cuts_as_many_ranges_of_about_one_length(size, split_bytes):
    """As many ranges as cutting at ``split_bytes`` makes, none longer, the last within a byte per range of the rest."""
    step = ranges.even_split_bytes(size, split_bytes)
    pieces = -(-size // split_bytes)
    assert step <= split_bytes
    assert -(-size // step) == pieces
    assert step - pieces <= size - (pieces - 1) * step <= step


def test_detect_format():
    assert detect_format("x/events-1.csv.gz") == "csv"
    assert detect_format("x/events-1.jsonl") == "json"
    assert detect_format("x/events-1.txt", "csv") == "csv"


def _read(pattern: str, **kwargs):
    pipeline = TestPipeline()
    records = pipeline | ReadEventFiles(pattern, **kwargs) | beam.FlatMap(lambda batch: batch)
    return pipeline, records


def test_reads_every_line_once_across_ranges_with_its_line_number(tmp_path):
    lines = [f'{{"n": {i}, "pad": "{"x" * (i % 17)}"}}' for i in range(500)]
    (tmp_path / "a.jsonl").write_text("\r\n".join(lines[:250]) + "\r\n")
    (tmp_path / "b.jsonl").write_text("\n".join(lines[250:]))  # no final newline
    pipeline, records = _read(str(tmp_path / "*.jsonl"), split_bytes=700, batch_size=7)
    expected = [(f"{tmp_path}/a.jsonl:{i + 1}", lines[i].encode()) for i in range(250)]
    expected += [(f"{tmp_path}/b.jsonl:{i + 1}", lines[250 + i].encode()) for i in range(250)]
    assert_that(records | beam.Map(lambda r: (r.source, r.payload)), equal_to(expected))
    pipeline.run()


def test_reads_gzip_and_csv_with_header_and_quoted_newlines(tmp_path):
    with gzip.open(tmp_path / "e.csv.gz", "wt", newline="") as out:
        out.write('\ufeffevent_id,page_url\r\na1,"/x\ny"\r\na2,/z\r\n\r\n')
    pipeline, records = _read(str(tmp_path / "e.csv.gz"))
    assert_that(
        records | beam.Map(lambda r: (r.source.rsplit(":", 1)[1], r.payload, r.format, r.csv_header)),
        equal_to(
            [
                ("2", b'a1,"/x\ny"', "csv", ("event_id", "page_url")),
                ("4", b"a2,/z", "csv", ("event_id", "page_url")),
                ("5", b"", "csv", ("event_id", "page_url")),
            ]
        ),
    )
    pipeline.run()


def test_truncated_gzip_yields_what_it_had_and_one_error_record(tmp_path):
    whole = gzip.compress(b"".join(b'{"n": %d}\n' % i for i in range(20000)))
    (tmp_path / "cut.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    pipeline, records = _read(str(tmp_path / "cut.jsonl.gz"))
    errors = records | beam.Filter(lambda r: READ_ERROR_ATTRIBUTE in dict(r.attributes)) | beam.Map(lambda r: 1)
    assert_that(errors | "CountErrors" >> beam.combiners.Count.Globally(), equal_to([1]), label="one error record")
    good = records | beam.Filter(lambda r: READ_ERROR_ATTRIBUTE not in dict(r.attributes))
    assert_that(
        good | "CountGood" >> beam.combiners.Count.Globally() | beam.Map(lambda n: 0 < n < 20000),
        equal_to([True]),
        label="the readable part",
    )
    pipeline.run()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"bc", b"\r", b"\n", b"\r\n"]), max_size=40), st.integers(1, 12))
def test_line_blocks_are_the_files_lines_however_it_is_cut_into_chunks(pieces, chunk):
    """Every line once, in order, its terminator (``\\n`` or ``\\r\\n``) stripped, a last unterminated one too."""
    data = b"".join(pieces)
    chunks = [data[start : start + chunk] for start in range(0, len(data), chunk)]
    lines = [line for block in file_lines.line_blocks(iter(chunks), 1 << 20) for line in block]
    expected = data.split(b"\n")
    if expected[-1] == b"":
        expected.pop()
    assert lines == [line.removesuffix(b"\r") for line in expected]


class _At:
    offset = 0


def _csv_file_records(data: bytes, max_record_bytes: int = 1 << 20) -> list:
    file_range = ranges.FileRange("f.csv", "csv", False, size=len(data))
    maker = raw_records.RecordMaker(file_range, _At(), max_record_bytes)
    blocks = file_lines.line_blocks(iter([data]), max_record_bytes)
    return [record for block in csv_rows.csv_records(maker, blocks) for record in block]


_CELLS = st.text(st.sampled_from('ab,"\n é'), max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(_CELLS, min_size=3, max_size=3), max_size=12),
    st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    st.sampled_from(["\n", "\r\n"]),
)
def test_csv_records_are_the_rows_python_csv_reads(rows, quoting, terminator):
    """RFC 4180 files (quoted header, quotes, commas and line breaks inside fields): one record per row."""
    text = io.StringIO()
    writer = csv.writer(text, quoting=quoting, lineterminator=terminator)
    writer.writerow(["a", "b", "c"])
    writer.writerows(rows)
    records = _csv_file_records(text.getvalue().encode())
    expected = list(csv.reader(io.StringIO(text.getvalue(), newline="")))[1:]
    assert [r.csv_header for r in records] == [("a", "b", "c")] * len(expected)
    parsed = [next(csv.reader(io.StringIO(r.payload.decode(), newline="")), []) for r in records]
    assert parsed == [[cell.replace("\r\n", "\n") for cell in row] for row in expected]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.sampled_from('ab,"\r\n'), max_size=12), min_size=1, max_size=30))
def test_csv_records_account_for_every_line_of_a_malformed_file(lines):
    """Whatever the quotes do, every line after the header lands in exactly one record, in order."""
    data = "\n".join(["a,b,c", *lines]).encode()
    records = _csv_file_records(data)
    first_lines = [int(r.source.rsplit(":", 1)[1]) for r in records]
    spans = [r.payload.count(b"\n") + 1 for r in records]
    assert first_lines == [2 + sum(spans[:i]) for i in range(len(records))]  # contiguous, none twice
    assert sum(spans) == len(data.removesuffix(b"\n").split(b"\n")) - 1  # the lines after the header


def _csv_records_both_ways(data: bytes, chunk: int, max_record_bytes: int = 1 << 20) -> tuple[list, list]:
    """The records of ``data`` read ``chunk`` bytes at a time (rows then cross blocks of lines), with
    the fast path (plain lines without ``csv``) and with every row through ``csv``."""
    both = []
    for fast in (True, False):
        file_range = ranges.FileRange("f.csv", "csv", False, size=len(data))
        maker = raw_records.RecordMaker(file_range, _At(), max_record_bytes)
        chunks = [data[start : start + chunk] for start in range(0, len(data), chunk)]
        blocks = file_lines.line_blocks(iter(chunks), max_record_bytes)
        both.append([record for block in csv_rows.csv_records(maker, blocks, fast=fast) for record in block])
    return both[0], both[1]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(st.text(st.sampled_from('ab,"é\n'), max_size=6), min_size=3, max_size=3), max_size=12),
    st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    st.sampled_from(["\n", "\r\n"]),
    st.sampled_from([1, 5, 64, 1 << 20]),
)
def test_csv_fast_path_reads_well_formed_files_as_csv_does(rows, quoting, terminator, chunk):
    """Written by ``csv.writer`` (quotes, commas, line breaks in cells, or none): both paths give its rows."""
    text = io.StringIO()
    writer = csv.writer(text, quoting=quoting, lineterminator=terminator)
    writer.writerow(["a", "b", "c"])
    writer.writerows(rows)
    fast, reference = _csv_records_both_ways(text.getvalue().encode(), chunk)
    assert fast == reference
    parsed = [next(csv.reader(io.StringIO(r.payload.decode(), newline="")), []) for r in fast]
    assert parsed == rows


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.text(st.sampled_from('ab,"\r\n\x00é'), max_size=12), min_size=1, max_size=30),
    st.sampled_from([4, 16, 1 << 20]),
    st.sampled_from([1, 5, 64, 1 << 20]),
)
def test_csv_fast_path_matches_the_csv_path_on_any_lines(lines, max_record_bytes, chunk):
    """Stray quotes, bare CRs, NULs, oversized lines, blank lines: both paths give the same records."""
    data = "\n".join(lines).encode()
    fast, reference = _csv_records_both_ways(data, chunk, max_record_bytes)
    assert fast == reference


def test_a_block_with_a_few_quotes_is_judged_for_the_bulk_csv_pass_once():
    """The density test counts the rest of the block: done per quoted line it would be quadratic."""
    cursor = csv_rows.CsvCursor(iter([[b'a,"b"', b"c,d"] * 50]))
    assert cursor.next_block()
    assert cursor.plain_lines_ahead() == 0
    assert cursor.single_line_rows_ahead() == 0  # 100 quotes for 100 lines: not dense
    assert cursor.bulk_tried
    dense = csv_rows.CsvCursor(iter([[b'"a","b"', b'"c","d"'] * 50]))
    assert dense.next_block()
    assert dense.single_line_rows_ahead() == 100
    assert dense.single_line_rows_ahead() == 0  # once per block
