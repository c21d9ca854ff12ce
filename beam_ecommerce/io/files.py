"""ReadEventFiles: JSONL and CSV files (gzip too), local or ``gs://``, as batches of raw records.

Files are matched, cut into line-aligned byte ranges that workers read in parallel,
and read in large chunks: each batch of records is one Beam element, so Beam's
per-element cost is paid once per batch instead of once per line.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_ecommerce.records import CSV, JSON, RawBatch, RawRecord
from beam_ecommerce.transforms.parse import READ_ERROR_ATTRIBUTE

AUTO = "auto"
_CHUNK_BYTES = 8 << 20
# A stray quote would otherwise glue the rest of a CSV file into one record.
_MAX_CSV_RECORD_LINES = 1000


def detect_format(path: str, declared: str = AUTO) -> str:
    """``csv`` or ``json`` for ``path``: as declared, else by extension (``.csv[.gz]`` is CSV)."""
    if declared != AUTO:
        return CSV if declared == CSV else JSON
    name = path[: -len(".gz")] if path.endswith(".gz") else path
    return CSV if name.lower().endswith(".csv") else JSON


@dataclass(frozen=True)
class FileRange:
    """Bytes ``[start, end)`` of a file (``end=None``: to the end), starting at ``first_line``."""

    path: str
    format: str
    compressed: bool
    start: int = 0
    end: int | None = None
    first_line: int = 1


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
            yield FileRange(path, fmt, compressed)
            return
        start, first_line = 0, 1
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
            for offset, line in split_points(stream, self.split_bytes):
                if offset < metadata.size_in_bytes:
                    yield FileRange(path, fmt, False, start, offset, first_line)
                    start, first_line = offset, line
        yield FileRange(path, fmt, False, start, None, first_line)


class TruncatedInput(EOFError):
    """A compressed file ends before its compressed stream does."""


def _chunks(stream: BinaryIO, length: int | None) -> Iterator[bytes]:
    """``length`` bytes of ``stream`` (all if ``None``) in large chunks."""
    remaining = length
    while remaining is None or remaining > 0:
        chunk = stream.read(_CHUNK_BYTES if remaining is None else min(_CHUNK_BYTES, remaining))
        if not chunk:
            return
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk


def _gunzip(chunks: Iterator[bytes]) -> Iterator[bytes]:
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


def _strip_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


def _line_blocks(chunks: Iterator[bytes]) -> Iterator[list[bytes] | Exception]:
    """The lines of ``chunks`` (terminators stripped), one list per chunk; a read error ends them."""
    carry = b""
    while True:
        try:
            chunk = next(chunks, None)
        except (EOFError, OSError, zlib.error) as error:
            if carry:
                yield [_strip_cr(carry)]
            yield error
            return
        if chunk is None:
            break
        has_cr = b"\r" in chunk or carry.endswith(b"\r")
        lines = (carry + chunk).split(b"\n")
        carry = lines.pop()
        yield [_strip_cr(line) for line in lines] if has_cr else lines
    if carry:
        yield [_strip_cr(carry)]


def _read_error(file_range: FileRange, line: int, error: Exception, header: tuple[str, ...] | None) -> RawRecord:
    message = f"{type(error).__name__}: {error}"
    source = f"{file_range.path}:{line}"
    return RawRecord(b"", source, file_range.format, ((READ_ERROR_ATTRIBUTE, message),), header)


def _json_records(file_range: FileRange, blocks: Iterator[list[bytes] | Exception]) -> Iterator[list[RawRecord]]:
    """One record per line, in lists as large as the chunks they were read in."""
    path, line = file_range.path, file_range.first_line
    for block in blocks:
        if isinstance(block, Exception):
            yield [_read_error(file_range, line, block, None)]
            return
        yield [RawRecord(payload, f"{path}:{number}") for number, payload in enumerate(block, line)]
        line += len(block)


def _csv_records(file_range: FileRange, blocks: Iterator[list[bytes] | Exception]) -> Iterator[list[RawRecord]]:
    """One record per logical CSV row (a quoted field may span lines) after the header line."""
    lines = (line for block in blocks for line in ([block] if isinstance(block, Exception) else block))
    header_line = next(lines, b"")
    if isinstance(header_line, Exception):  # not even the header could be read
        yield [_read_error(file_range, file_range.first_line, header_line, None)]
        return
    header = _csv_header(header_line)
    pending: list[bytes] = []
    quotes = 0
    number = first = file_range.first_line + 1
    for line in lines:
        if isinstance(line, Exception):
            if pending:
                yield [RawRecord(b"\n".join(pending), f"{file_range.path}:{first}", CSV, (), header)]
            yield [_read_error(file_range, number, line, header)]
            return
        if not pending:
            first = number
        pending.append(line)
        number += 1
        quotes += line.count(b'"')
        if quotes % 2 == 0 or len(pending) >= _MAX_CSV_RECORD_LINES:
            yield [RawRecord(b"\n".join(pending), f"{file_range.path}:{first}", CSV, (), header)]
            pending, quotes = [], 0
    if pending:
        yield [RawRecord(b"\n".join(pending), f"{file_range.path}:{first}", CSV, (), header)]


class _ReadRange(beam.DoFn):
    """A file range -> batches of ``RawRecord``, each with its ``<path>:<line>`` source."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def process(self, file_range: FileRange) -> Iterator[RawBatch]:
        with FileSystems.open(file_range.path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
            if file_range.start:
                stream.seek(file_range.start)
            length = None if file_range.end is None else file_range.end - file_range.start
            chunks = _chunks(stream, length)
            blocks = _line_blocks(_gunzip(chunks) if file_range.compressed else chunks)
            records = (_json_records if file_range.format == JSON else _csv_records)(file_range, blocks)
            pending: list[RawRecord] = []
            for block in records:
                pending.extend(block)
                while len(pending) >= self.batch_size:
                    yield RawBatch(pending[: self.batch_size])
                    del pending[: self.batch_size]
            if pending:
                yield RawBatch(pending)


def _csv_header(line: bytes) -> tuple[str, ...] | None:
    try:
        text = line.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None
    return tuple(name.strip() for name in text.split(",")) if text.strip() else None


class ReadEventFiles(beam.PTransform):
    """A file pattern (local or ``gs://``) -> a PCollection of ``RawBatch``.

    JSONL (one event per line) and CSV (a header row, then one event per record) are told
    apart by extension unless ``input_format`` says; ``.gz`` files are decompressed.
    Uncompressed JSONL files are cut into ``split_bytes`` ranges read in parallel.
    A file that cannot be read to its end (e.g. a truncated gzip) yields what it had,
    then one record that carries the read error, which the core dead-letters.
    """

    def __init__(self, pattern: str, input_format: str = AUTO, batch_size: int = 2000, split_bytes: int = 64 << 20):
        super().__init__()
        self.pattern = pattern
        self.input_format = input_format
        self.batch_size = batch_size
        self.split_bytes = split_bytes

    def expand(self, pbegin):
        return (
            pbegin
            | "Match" >> fileio.MatchFiles(self.pattern)
            | "Split" >> beam.ParDo(_SplitFile(self.input_format, self.split_bytes))
            | "Distribute" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(_ReadRange(self.batch_size))
        )
