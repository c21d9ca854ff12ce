"""CSV rows (RFC 4180) found in blocks of lines: plain lines in bulk, quoted rows by Python's ``csv``."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from itertools import chain

from beam_ecommerce.io.files.lines import Line, OversizedLine
from beam_ecommerce.io.files.raw_records import RECORDS_AT_ONCE, RecordMaker, line_records, new_record
from beam_ecommerce.records import RawRecord


class CsvCursor:
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


def csv_records(
    maker: RecordMaker, blocks: Iterator[list[Line] | Exception], fast: bool = True
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
    cursor = CsvCursor(blocks)
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
                maker.header, in_header = csv_header(lines[0]), False
                lines, number = lines[1:], number + 1
            yield from line_records(maker, lines, number)
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
                maker.header, in_header = csv_header(b"\n".join(lines)), False
            elif len(lines) == 1:
                records.append(new_record((lines[0], f"{prefix}{number}", fmt, (), maker.header)))
            elif len(row) == len(maker.header or ()) and sum(map(len, lines)) <= maker.max_record_bytes:
                records.append(maker.record(b"\n".join(lines), number))
            else:
                records.extend(chain.from_iterable(line_records(maker, lines, number)))
            number += len(lines)
            more = cursor.index < len(cursor.lines) and (not fast or b'"' in cursor.lines[cursor.index])
            if len(records) >= RECORDS_AT_ONCE or not more:
                break
        yield records


def csv_header(line: bytes) -> tuple[str, ...] | None:
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
