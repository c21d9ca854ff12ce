"""ReadEventFiles: JSONL and CSV files (gzip too), local or ``gs://``, as batches of raw records.

Files are matched, cut into line-aligned byte ranges that workers read in parallel,
and read in large chunks: each batch of records is one Beam element, so Beam's
per-element cost is paid once per batch instead of once per line.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import chain, repeat
from typing import BinaryIO

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_ecommerce import metrics
from beam_ecommerce.records import (
    CSV,
    DEFAULT_MAX_RECORD_BYTES,
    JSON,
    READ_ERROR_ATTRIBUTE,
    TOO_LARGE_ATTRIBUTE,
    RawBatch,
    RawRecord,
)

AUTO = "auto"
_CHUNK_BYTES = 8 << 20
# What a dead letter keeps of a record over the size limit (with its length and sha256).
OVERSIZED_PREFIX_BYTES = 4096
_LOGGER = logging.getLogger(__name__)


def detect_format(path: str, declared: str = AUTO) -> str:
    """``csv`` or ``json`` for ``path``: as declared, else by extension (``.csv[.gz]`` is CSV)."""
    if declared != AUTO:
        return CSV if declared == CSV else JSON
    name = path[: -len(".gz")] if path.endswith(".gz") else path
    return CSV if name.lower().endswith(".csv") else JSON


@dataclass(frozen=True)
class FileRange:
    """Bytes ``[start, end)`` of a file of ``size`` bytes (``end=None``: to the end), starting at ``first_line``."""

    path: str
    format: str
    compressed: bool
    start: int = 0
    end: int | None = None
    first_line: int = 1
    size: int | None = None


def split_points(stream: BinaryIO, split_bytes: int) -> Iterator[tuple[int, int]]:
    """``(offset, line number)`` of each line start at or after every ``split_bytes`` boundary."""
    line, pos, next_cut = 1, 0, split_bytes
    while chunk := stream.read(_CHUNK_BYTES):
        counted = 0
        while (search_from := max(next_cut - pos, counted)) < len(chunk):
            newline = chunk.find(b"\n", search_from)
            if newline < 0:
                break
            line += chunk.count(b"\n", counted, newline + 1)
            counted = newline + 1
            yield pos + counted, line
            next_cut = pos + counted + split_bytes
        line += chunk.count(b"\n", counted)
        pos += len(chunk)


class _SplitFile(beam.DoFn):
    """A matched file -> line-aligned ranges (one for compressed and CSV files)."""

    def __init__(self, input_format: str, split_bytes: int) -> None:
        self.input_format = input_format
        self.split_bytes = split_bytes

    def process(self, metadata: fileio.FileMetadata) -> Iterator[FileRange]:
        path = metadata.path
        fmt = detect_format(path, self.input_format)
        compressed = path.endswith(".gz")
        if compressed or fmt == CSV or metadata.size_in_bytes <= self.split_bytes:
            yield FileRange(path, fmt, compressed, size=metadata.size_in_bytes)
            return
        start, first_line = 0, 1
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
            for offset, line in split_points(stream, self.split_bytes):
                if offset < metadata.size_in_bytes:
                    yield FileRange(path, fmt, False, start, offset, first_line)
                    start, first_line = offset, line
        yield FileRange(path, fmt, False, start, None, first_line, metadata.size_in_bytes)


class TruncatedInput(EOFError):
    """A compressed file ends before its compressed stream does."""


class _RangeBytes:
    """Bytes ``[start, end)`` of an open file in large chunks; ``offset`` is where reading stands."""

    def __init__(self, stream: BinaryIO, file_range: FileRange) -> None:
        self.stream = stream
        self.offset = file_range.start
        self.end = file_range.end

    def __iter__(self) -> Iterator[bytes]:
        while self.end is None or self.offset < self.end:
            wanted = _CHUNK_BYTES if self.end is None else min(_CHUNK_BYTES, self.end - self.offset)
            chunk = self.stream.read(wanted)
            if not chunk:
                return
            self.offset += len(chunk)
            yield chunk


def _gunzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decompressed gzip data (all members); raises ``TruncatedInput`` if the data ends early.

    Beam's own gzip reader treats a cut-off file as a clean end of file, which would
    drop its tail without a trace; this one notices.
    """
    decompressor = zlib.decompressobj(wbits=31)
    in_member = False
    for chunk in chunks:
        while chunk:
            in_member = True
            yield decompressor.decompress(chunk)
            if not decompressor.eof:
                break
            chunk = decompressor.unused_data
            decompressor = zlib.decompressobj(wbits=31)
            in_member = False
    if in_member:
        raise TruncatedInput("compressed stream ends early: the file is truncated")


@dataclass(frozen=True)
class OversizedLine:
    """A line longer than the record-size limit: only its length, digest and first bytes are kept."""

    length: int
    sha256: str
    prefix: bytes


class _OversizedLineDigest:
    """Consumes an oversized line piece by piece, in constant memory."""

    def __init__(self, head: bytes) -> None:
        self.prefix = head[:OVERSIZED_PREFIX_BYTES]
        self.length = 0
        self.digest = hashlib.sha256()
        self.update(head)

    def update(self, piece: bytes) -> None:
        self.length += len(piece)
        self.digest.update(piece)

    def done(self) -> OversizedLine:
        return OversizedLine(self.length, self.digest.hexdigest(), self.prefix)


Line = bytes | OversizedLine


def _strip_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


def _line_blocks(chunks: Iterator[bytes], max_record_bytes: int) -> Iterator[list[Line] | Exception]:
    """The lines of ``chunks`` (terminators stripped), in non-empty lists; a read error ends them.

    A line longer than ``max_record_bytes`` is not held: it is hashed as it streams by and
    comes out as an ``OversizedLine``, alone in its list, so memory and time stay linear
    whatever the input and readers check for one once per list.
    """
    carry = b""
    oversized: _OversizedLineDigest | None = None
    while True:
        try:
            chunk = next(chunks, None)
        except (EOFError, OSError, zlib.error) as error:
            if oversized is not None:
                yield [oversized.done()]
            elif carry:
                yield [_strip_cr(carry)]
            yield error
            return
        if chunk is None:
            break
        if oversized is not None:
            newline = chunk.find(b"\n")
            if newline < 0:
                oversized.update(chunk)
                continue
            oversized.update(chunk[:newline])
            yield [oversized.done()]
            oversized, chunk = None, chunk[newline + 1 :]
        buffer = carry + chunk
        lines = buffer.split(b"\n")
        carry = lines.pop()
        if b"\r" in buffer:
            lines = [line[:-1] if line[-1:] == b"\r" else line for line in lines]
        if len(buffer) <= max_record_bytes:
            if lines:
                yield lines
            continue
        yield from _isolate_oversized(lines, max_record_bytes)
        if len(carry) > max_record_bytes:
            oversized, carry = _OversizedLineDigest(carry), b""
    if oversized is not None:
        yield [oversized.done()]
    elif carry:
        yield [_strip_cr(carry)]


def _isolate_oversized(lines: list[bytes], max_record_bytes: int) -> Iterator[list[Line]]:
    """``lines`` in runs, each line over ``max_record_bytes`` alone as an ``OversizedLine``."""
    start = 0
    for index, line in enumerate(lines):
        if len(line) > max_record_bytes:
            if index > start:
                yield lines[start:index]
            yield [_OversizedLineDigest(line).done()]
            start = index + 1
    if start < len(lines):
        yield lines[start:]


class _RecordMaker:
    """Builds the ``RawRecord`` of each line or CSV row of one file range, and its read errors."""

    def __init__(self, file_range: FileRange, position: _RangeBytes, max_record_bytes: int) -> None:
        self.file_range = file_range
        self.position = position
        self.max_record_bytes = max_record_bytes
        self.header: tuple[str, ...] | None = None
        self.failed = False

    def record(self, payload: Line, line: int) -> RawRecord:
        source = f"{self.file_range.path}:{line}"
        if isinstance(payload, bytes):
            return RawRecord(payload, source, self.file_range.format, (), self.header)
        message = (
            f"record of {payload.length} bytes (sha256 {payload.sha256}) is over --max_record_bytes="
            f"{self.max_record_bytes}; the dead letter keeps its first {len(payload.prefix)} bytes"
        )
        return RawRecord(payload.prefix, source, self.file_range.format, ((TOO_LARGE_ATTRIBUTE, message),), self.header)

    def read_error(self, line: int, error: Exception | str) -> RawRecord:
        """The record that stands for what could not be read; the run fails because of it."""
        self.failed = True
        path, offset = self.file_range.path, self.position.offset
        metrics.counter(f"{metrics.READ_FAILURES}.{path}@{offset}").inc()
        message = f"{path}: cannot read past byte {offset}: {error if isinstance(error, str) else _describe(error)}"
        return RawRecord(b"", f"{path}:{line}", self.file_range.format, ((READ_ERROR_ATTRIBUTE, message),), self.header)


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


# Records are made this many at a time, so they are handed on while young: made a whole
# block (8 MiB of lines) at a time, they outlive the collector's young generations and
# its collections cost more than making them (measured: 2.5 -> 1.7 µs per JSONL record).
_RECORDS_AT_ONCE = 1000
# ``RawRecord(...)`` runs the named tuple's Python ``__new__``; this builds the same tuple in C.
_new_record = partial(tuple.__new__, RawRecord)


def _line_records(maker: _RecordMaker, lines: list[bytes], first_line: int) -> Iterator[list[RawRecord]]:
    """One record per line of ``lines`` (none oversized), numbered from ``first_line``, built in bulk."""
    prefix, fmt, header = f"{maker.file_range.path}:", maker.file_range.format, maker.header
    for start in range(0, len(lines), _RECORDS_AT_ONCE):
        part = lines[start : start + _RECORDS_AT_ONCE]
        number = first_line + start
        sources = map(prefix.__add__, map(str, range(number, number + len(part))))
        yield list(map(_new_record, zip(part, sources, repeat(fmt), repeat(()), repeat(header))))


def _json_records(maker: _RecordMaker, blocks: Iterator[list[Line] | Exception]) -> Iterator[list[RawRecord]]:
    """One record per line, in lists of at most ``_RECORDS_AT_ONCE``."""
    line = maker.file_range.first_line
    for block in blocks:
        if isinstance(block, Exception):
            yield [maker.read_error(line, block)]
            return
        if type(block[0]) is OversizedLine:
            yield [maker.record(block[0], line)]
        else:
            yield from _line_records(maker, block, line)
        line += len(block)


class _CsvCursor:
    """Where reading a CSV file stands: the current block of lines and the next line.

    ``reader_lines`` feeds ``csv.reader`` from the next line on, moving to the next block
    only inside a row (a quoted field spanning lines): the row being read has the lines
    from ``row_start`` on, after those ``carried`` from earlier blocks. An oversized line
    or a read error ends the blocks it can read, and is left in ``stopped``.
    """

    def __init__(self, blocks: Iterator[list[Line] | Exception]) -> None:
        self.blocks = blocks
        self.lines: list[bytes] = []
        self.joined = b""
        self.index = 0
        self.row_start = 0
        self.carried: list[bytes] = []  # lines of the row being read, from blocks before this one
        self.offset = 0  # in ``joined``, of line ``offset_index``
        self.offset_index = 0
        self.stopped: OversizedLine | Exception | None = None
        self.bulk_tried = False

    def next_block(self) -> bool:
        """Moves to the next block of lines; False at the end of the range or at an oversized line or read error."""
        block = next(self.blocks, None)
        if block is None:
            return False
        if isinstance(block, Exception) or type(block[0]) is OversizedLine:
            self.stopped = block if isinstance(block, Exception) else block[0]
            return False
        self.carried += self.lines[self.row_start :]
        self.lines, self.joined = block, b"\n".join(block)
        self.index = self.row_start = self.offset = self.offset_index = 0
        self.bulk_tried = False
        return True

    def reader_lines(self) -> Iterator[str]:
        while self.index < len(self.lines) or self.next_block():
            self.index += 1
            yield self.lines[self.index - 1].decode("utf-8", "surrogateescape")

    def plain_lines_ahead(self) -> int:
        """How many lines from the next one hold no ``"``: each of those is a whole CSV row."""
        # ``offset`` catches up here, not line by line in ``reader_lines``: each line is summed once.
        self.offset += sum(map(len, self.lines[self.offset_index : self.index])) + self.index - self.offset_index
        self.offset_index = self.index
        quote = self.joined.find(b'"', self.offset)
        if quote < 0:
            return len(self.lines) - self.index
        return self.joined.count(b"\n", self.offset, quote)

    def single_line_rows_ahead(self) -> int:
        """All the lines left in a block dense with quotes if ``csv`` reads each as a whole row, else 0.

        Tried once per block, right after ``plain_lines_ahead`` found a quote in the next line:
        one ``csv`` pass in C over the rest of the block, strict, so a row left open at its
        end is an error; as many rows as lines means every row is one line.
        """
        if self.bulk_tried:
            return 0
        self.bulk_tried = True  # even when the block is not dense: counting its quotes is a pass too
        rest = len(self.lines) - self.index
        if self.joined.count(b'"', self.offset) <= rest:
            return 0
        texts = self.joined[self.offset :].decode("utf-8", "surrogateescape").split("\n")
        try:
            rows = sum(1 for _ in csv.reader(texts, strict=True))
        except csv.Error:
            return 0
        return rest if rows == rest else 0


def _csv_records(
    maker: _RecordMaker, blocks: Iterator[list[Line] | Exception], fast: bool = True
) -> Iterator[list[RawRecord]]:
    """One record per CSV row (RFC 4180: a quoted field may span lines) after the header row.

    Rows are found by Python's ``csv`` module, so ``records in`` is what it reads; but a
    line without a ``"`` that starts a row is that whole row, so runs of such lines become
    records in bulk without it, and so do the rest of a block full of quoted fields once one
    ``csv`` pass found each of its lines a whole row (``fast=False``: every row through
    ``csv`` one by one, the reference).
    A row that spans lines but does not parse into the header's columns (a stray quote
    opened a field that swallowed the lines after it), or that is over the size limit, is
    not trusted: each of its lines becomes a record of its own, with its own line number,
    so a bad quote never hides the valid rows after it. Each line is read once.
    """
    cursor = _CsvCursor(blocks)
    reader = csv.reader(cursor.reader_lines())
    prefix, fmt = f"{maker.file_range.path}:", maker.file_range.format
    number = maker.file_range.first_line
    in_header = True
    while True:
        if cursor.index == len(cursor.lines) and (cursor.stopped is not None or not cursor.next_block()):
            item, cursor.stopped = cursor.stopped, None
            if item is None:
                return
            if isinstance(item, Exception):
                yield [maker.read_error(number, item)]
                return
            yield [maker.record(item, number)]
            in_header, number = False, number + 1
            reader = csv.reader(cursor.reader_lines())  # the last one ended at ``item``
            continue
        if fast and (plain := cursor.plain_lines_ahead() or cursor.single_line_rows_ahead()):
            lines = cursor.lines[cursor.index : cursor.index + plain]
            cursor.index += plain
            if in_header:
                maker.header, in_header = _csv_header(lines[0]), False
                lines, number = lines[1:], number + 1
            yield from _line_records(maker, lines, number)
            number += len(lines)
            continue
        # The next line holds a quote: ``csv`` reads rows while they start with such a line.
        records: list[RawRecord] = []
        while True:
            cursor.row_start, cursor.carried = cursor.index, []
            try:
                row = next(reader)
            except csv.Error:
                row = []  # a field over the size limit: split below, line by line
            lines = cursor.lines[cursor.row_start : cursor.index]
            if cursor.carried:
                lines = cursor.carried + lines
            if in_header:
                maker.header, in_header = _csv_header(b"\n".join(lines)), False
            elif len(lines) == 1:
                records.append(_new_record((lines[0], f"{prefix}{number}", fmt, (), maker.header)))
            elif len(row) == len(maker.header or ()) and sum(map(len, lines)) <= maker.max_record_bytes:
                records.append(maker.record(b"\n".join(lines), number))
            else:
                records.extend(chain.from_iterable(_line_records(maker, lines, number)))
            number += len(lines)
            more = cursor.index < len(cursor.lines) and (not fast or b'"' in cursor.lines[cursor.index])
            if len(records) >= _RECORDS_AT_ONCE or not more:
                break
        yield records


class _ReadRange(beam.DoFn):
    """A file range -> batches of ``RawRecord``, each with its ``<path>:<line>`` source.

    It keeps the run's independent books: ``source_records`` counts every record it offers
    and ``source_bytes`` every byte it read; a range it could not read to its last byte
    ends with a read-error record and a ``read_failures.<path>@<offset>`` counter that
    fails the run.
    """

    def __init__(self, batch_size: int, max_record_bytes: int) -> None:
        self.batch_size = batch_size
        self.max_record_bytes = max_record_bytes

    def setup(self) -> None:
        # A quoted CSV field may be as large as a record (the module's default is 128 KiB).
        csv.field_size_limit(max(self.max_record_bytes, 1))
        self._source_records = metrics.counter(metrics.SOURCE_RECORDS)
        self._source_bytes = metrics.counter(metrics.SOURCE_BYTES)

    def process(self, file_range: FileRange) -> Iterator[RawBatch]:
        offered = 0
        with FileSystems.open(file_range.path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
            if file_range.start:
                stream.seek(file_range.start)
            position = _RangeBytes(stream, file_range)
            chunks = iter(position)
            blocks = _line_blocks(_gunzip(chunks) if file_range.compressed else chunks, self.max_record_bytes)
            maker = _RecordMaker(file_range, position, self.max_record_bytes)
            records = (_json_records if file_range.format == JSON else _csv_records)(maker, blocks)
            pending: list[RawRecord] = []
            size = self.batch_size
            for block in records:
                pending.extend(block)
                offered += len(block)
                if len(pending) >= size:
                    full = len(pending) - len(pending) % size
                    for start in range(0, full, size):
                        yield RawBatch(pending[start : start + size])
                    pending = pending[full:]
            expected_end = file_range.size if file_range.end is None else file_range.end
            if not maker.failed and expected_end is not None and position.offset < expected_end:
                # The file shrank after it was matched: what it lost cannot be counted, so the run fails.
                pending.append(maker.read_error(0, f"the file ends before byte {expected_end}"))
                offered += 1
            if pending:
                yield RawBatch(pending)
        self._source_records.inc(offered)
        self._source_bytes.inc(position.offset - file_range.start)
        _LOGGER.info("read %s bytes %s-%s: %d records", file_range.path, file_range.start, position.offset, offered)


def _csv_header(line: bytes) -> tuple[str, ...] | None:
    """The column names of a CSV header line (RFC 4180: names may be quoted; a UTF-8 BOM is dropped)."""
    try:
        text = line.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None
    if not text.strip():
        return None
    try:
        names = next(csv.reader([text]))
    except csv.Error:
        return None
    return tuple(name.strip() for name in names)


class ReadEventFiles(beam.PTransform):
    """A file pattern (local or ``gs://``) -> a PCollection of ``RawBatch``.

    JSONL (one event per line) and CSV (a header row, then one event per record) are told
    apart by extension unless ``input_format`` says; ``.gz`` files are decompressed.
    Uncompressed JSONL files are cut into ``split_bytes`` ranges read in parallel.
    A file that cannot be read to its end (e.g. a truncated gzip) yields what it had,
    then one record that carries the read error, which the core dead-letters, and
    counts a ``read_failures`` metric naming the file and byte offset, which fails the run.
    A line (or CSV row) over ``max_record_bytes`` is never held whole: its record carries
    the first ``OVERSIZED_PREFIX_BYTES`` bytes, and its length and sha256 in an attribute,
    and the core dead-letters it as ``record_too_large``.
    """

    def __init__(
        self,
        pattern: str,
        input_format: str = AUTO,
        batch_size: int = 2000,
        split_bytes: int = 64 << 20,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    ):
        super().__init__()
        self.pattern = pattern
        self.input_format = input_format
        self.batch_size = batch_size
        self.split_bytes = split_bytes
        self.max_record_bytes = max_record_bytes

    def expand(self, pbegin):
        return (
            pbegin
            | "Match" >> fileio.MatchFiles(self.pattern)
            | "Split" >> beam.ParDo(_SplitFile(self.input_format, self.split_bytes))
            | "Distribute" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(_ReadRange(self.batch_size, self.max_record_bytes))
        )
