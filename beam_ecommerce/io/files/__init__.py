"""ReadEventFiles: JSONL and CSV files (gzip too), local or ``gs://``, as batches of raw records.

Files are matched, cut into line-aligned byte ranges that workers read in parallel
(``ranges``), read in large chunks and split into blocks of lines (``lines``), turned into
records in bulk (``raw_records``; CSV rows found by ``csv_rows``): each batch of records is
one Beam element, so Beam's per-element cost is paid once per batch instead of once per line.
``read`` composes them and keeps the reader's own books.
"""

from beam_ecommerce.io.files.lines import OVERSIZED_PREFIX_BYTES
from beam_ecommerce.io.files.ranges import AUTO, FileRange, TruncatedInput, detect_format, split_points
from beam_ecommerce.io.files.read import ReadEventFiles

__all__ = [
    "AUTO",
    "OVERSIZED_PREFIX_BYTES",
    "FileRange",
    "ReadEventFiles",
    "TruncatedInput",
    "detect_format",
    "split_points",
]
