"""A range's bytes as blocks of lines; a line over the size limit is hashed as it streams past, never held."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

# What a dead letter keeps of a record over the size limit (with its length and sha256).
OVERSIZED_PREFIX_BYTES = 4096


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


def line_blocks(chunks: Iterator[bytes], max_record_bytes: int) -> Iterator[list[Line] | Exception]:
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
        # The carried partial line joins the chunk's first line only: copying the whole chunk
        # onto it cost an 8 MiB copy into fresh memory per chunk.
        lines = chunk.split(b"\n")
        if carry:
            lines[0] = carry + lines[0]
        size, carriage_returns = len(carry) + len(chunk), b"\r" in chunk or b"\r" in carry
        carry = lines.pop()
        if carriage_returns:
            lines = [line[:-1] if line[-1:] == b"\r" else line for line in lines]
        if size <= max_record_bytes:
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
