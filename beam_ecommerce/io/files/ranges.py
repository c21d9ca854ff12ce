"""Files cut into line-aligned byte ranges that workers read in parallel, and read in large chunks."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_ecommerce.records import CSV, JSON

AUTO = "auto"
CHUNK_BYTES = 8 << 20


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


def split_points(stream: BinaryIO, split_bytes: int, size: int) -> Iterator[tuple[int, int]]:
    """``(offset, line number)`` of each line start at or after every ``split_bytes`` boundary, before byte ``size``.

    Reading stops at the last of them: the lines after it need no counting (a file cut in
    two is read half way).
    """
    line, pos, next_cut = 1, 0, split_bytes
    while next_cut < size and (chunk := stream.read(CHUNK_BYTES)):
        counted = 0
        while (search_from := max(next_cut - pos, counted)) < len(chunk):
            newline = chunk.find(b"\n", search_from)
            if newline < 0:
                break
            line += chunk.count(b"\n", counted, newline + 1)
            counted = newline + 1
            if pos + counted >= size:
                return
            yield pos + counted, line
            next_cut = pos + counted + split_bytes
        line += chunk.count(b"\n", counted)
        pos += len(chunk)


def even_split_bytes(size: int, split_bytes: int) -> int:
    """The range length that cuts ``size`` bytes into as few ranges of at most ``split_bytes`` as
    ``split_bytes`` itself would, all of about the same length.

    Beam's local runner deals a stage's ranges out to its workers in turn, once: with a
    short last range per file, every worker but one got only the short ones (a 112 MB
    file cut at 64 MB gave one worker 60 % of the events, and the other waited for it).
    """
    pieces = -(-size // split_bytes)
    return -(-size // pieces)


class SplitFile(beam.DoFn):
    """A matched file -> line-aligned ranges (a single one for compressed and CSV files, or without ``split_bytes``)."""

    def __init__(self, input_format: str, split_bytes: int | None) -> None:
        self.input_format = input_format
        self.split_bytes = split_bytes

    def process(self, metadata: fileio.FileMetadata) -> Iterator[FileRange]:
        path = metadata.path
        fmt = detect_format(path, self.input_format)
        compressed = path.endswith(".gz")
        if compressed or fmt == CSV or self.split_bytes is None or metadata.size_in_bytes <= self.split_bytes:
            yield FileRange(path, fmt, compressed, size=metadata.size_in_bytes)
            return
        start, first_line = 0, 1
        size = metadata.size_in_bytes
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
            for offset, line in split_points(stream, even_split_bytes(size, self.split_bytes), size):
                yield FileRange(path, fmt, False, start, offset, first_line)
                start, first_line = offset, line
        yield FileRange(path, fmt, False, start, None, first_line, size)


class TruncatedInput(EOFError):
    """A compressed file ends before its compressed stream does."""


class RangeBytes:
    """Bytes ``[start, end)`` of an open file in large chunks; ``offset`` is where reading stands."""

    def __init__(self, stream: BinaryIO, file_range: FileRange) -> None:
        self.stream = stream
        self.offset = file_range.start
        self.end = file_range.end

    def __iter__(self) -> Iterator[bytes]:
        while self.end is None or self.offset < self.end:
            wanted = CHUNK_BYTES if self.end is None else min(CHUNK_BYTES, self.end - self.offset)
            chunk = self.stream.read(wanted)
            if not chunk:
                return
            self.offset += len(chunk)
            yield chunk


def gunzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
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
