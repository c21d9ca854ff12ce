"""ReadEventFiles: a file pattern -> batches of ``RawRecord``, with the reader's own books."""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_ecommerce import metrics
from beam_ecommerce.io.files.csv_rows import csv_records
from beam_ecommerce.io.files.lines import line_blocks
from beam_ecommerce.io.files.ranges import AUTO, FileRange, RangeBytes, SplitFile, gunzip
from beam_ecommerce.io.files.raw_records import RecordMaker, json_records
from beam_ecommerce.records import DEFAULT_BATCH_SIZE, DEFAULT_MAX_RECORD_BYTES, JSON, RawBatch, RawRecord

_LOGGER = logging.getLogger(__name__)


class ReadRange(beam.DoFn):
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
            position = RangeBytes(stream, file_range)
            chunks = iter(position)
            blocks = line_blocks(gunzip(chunks) if file_range.compressed else chunks, self.max_record_bytes)
            maker = RecordMaker(file_range, position, self.max_record_bytes)
            records = (json_records if file_range.format == JSON else csv_records)(maker, blocks)
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


class ReadEventFiles(beam.PTransform):
    """A file pattern (local or ``gs://``) -> a PCollection of ``RawBatch``.

    JSONL (one event per line) and CSV (a header row, then one event per record) are told
    apart by extension unless ``input_format`` says; ``.gz`` files are decompressed.
    Uncompressed JSONL files are cut into ``split_bytes`` ranges read in parallel (read
    whole if ``split_bytes`` is ``None``).
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
        batch_size: int = DEFAULT_BATCH_SIZE,
        split_bytes: int | None = 64 << 20,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    ):
        super().__init__()
        self.pattern = pattern
        self.input_format = input_format
        self.batch_size = batch_size
        self.split_bytes = split_bytes
        self.max_record_bytes = max_record_bytes

    def expand(self, pbegin):
        files = pbegin | "Match" >> fileio.MatchFiles(self.pattern)
        if self.split_bytes is not None:
            # Splitting counts each file's lines up to its cuts: spread over the workers, not done by one.
            files |= "SpreadFiles" >> beam.Reshuffle()
        return (
            files
            | "Split" >> beam.ParDo(SplitFile(self.input_format, self.split_bytes))
            | "Distribute" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(ReadRange(self.batch_size, self.max_record_bytes))
        )
