"""Writing a data set to files, locally or on GCS, with its manifest."""

from __future__ import annotations

import gc
import os
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

from beam_ecommerce.generator.catalogue import CATALOGUE_NAME, products_csv
from beam_ecommerce.generator.codecs import codec_for
from beam_ecommerce.generator.config import DUPLICATE, JSONL, VALID, GeneratorConfig, Manifest
from beam_ecommerce.generator.malformations import kinds_for
from beam_ecommerce.generator.record_stream import RecordStream
from beam_ecommerce.schemas.contract import event_types

MANIFEST_NAME = "_manifest.json"


def data_file_name(index: int, fmt: str, compress: bool) -> str:
    """Name of the ``index``-th data file: ``events-00000.jsonl`` (``.gz`` when compressed)."""
    return f"events-{index:05d}.{fmt}{'.gz' if compress else ''}"


def _file_pieces(stream: RecordStream, records_per_file: int) -> Iterator[tuple[int, list[bytes]]]:
    """``(file index, payloads)``: the stream's batches cut at file boundaries."""
    written = 0
    for batch in stream:
        payloads = batch.payloads
        done = 0
        while done < len(payloads):
            index, offset = divmod(written, records_per_file)
            piece = payloads[done : done + records_per_file - offset]
            yield index, piece
            done += len(piece)
            written += len(piece)


class _GzipFile:
    """A gzip member with no name and no time stamp in its header: the same bytes on every run."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._compressor = zlib.compressobj(wbits=31)

    def write(self, data: bytes) -> None:
        self._file.write(self._compressor.compress(data))

    def close(self) -> None:
        self._file.write(self._compressor.flush())
        self._file.close()

    def __enter__(self) -> _GzipFile:
        return self

    def __exit__(self, *_) -> None:
        self.close()


def _create(output: str, name: str, compress: bool = False) -> BinaryIO | _GzipFile:
    """Opens ``output/name`` for writing: a local file directly, a ``gs://`` (or other URI) through Beam.

    Local writes skip importing Beam, which costs the command about 1.5 s of start-up.
    """
    if "://" not in output:
        os.makedirs(output, exist_ok=True)
        path = os.path.join(output, name)
        return _GzipFile(path) if compress else open(path, "wb")  # noqa: SIM115
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    compression = CompressionTypes.GZIP if compress else CompressionTypes.UNCOMPRESSED
    return FileSystems.create(FileSystems.join(output, name), compression_type=compression)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Generation makes millions of short-lived objects but no reference cycles: the
    collector's passes over them, and over everything else alive in the process, would
    only cost time (several percent of a run)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _progress(total: int, show: bool) -> Iterator[Callable[[int], object]]:
    """A callback to count written records: a tqdm bar on stderr when ``show``, else nothing.

    tqdm is imported only to show a bar: its import and the multiprocessing lock it makes
    even when disabled cost the quiet command's start-up a few hundredths of a second.
    """
    if not show:
        yield lambda count: None
        return
    from tqdm import tqdm

    with tqdm(total=total, unit="ev", unit_scale=True, file=sys.stderr) as bar:
        yield bar.update


def write_files(
    config: GeneratorConfig,
    output: str,
    fmt: str = JSONL,
    *,
    compress: bool = False,
    records_per_file: int = 250_000,
    progress: bool = False,
) -> Manifest:
    """Write the data set of ``config`` into ``output`` and return its manifest.

    ``output`` is a local directory (created if missing) or a ``gs://bucket/prefix``;
    remote files are written through Beam's ``FileSystems``, streaming. Each data
    file holds at most ``records_per_file`` records, one per line (CSV files start with
    the header line). The product catalogue (``_products.csv``) and ``_manifest.json``
    are written last, beside them.
    """
    if records_per_file < 1:
        raise ValueError(f"records_per_file must be >= 1, got {records_per_file}")
    codec = codec_for(fmt)
    stream = RecordStream(config, codec)
    files: list[str] = []
    handle: BinaryIO | _GzipFile | None = None
    try:
        with _cyclic_gc_paused(), _progress(config.num_events, progress) as advance:
            for index, piece in _file_pieces(stream, records_per_file):
                if index == len(files):
                    if handle is not None:
                        handle.close()
                    files.append(data_file_name(index, fmt, compress))
                    handle = _create(output, files[-1], compress)
                    handle.write(codec.header)
                handle.write(b"\n".join(piece))  # type: ignore[union-attr]
                handle.write(b"\n")  # type: ignore[union-attr]
                advance(len(piece))
    finally:
        if handle is not None:
            handle.close()

    kinds = stream.kind_counts
    manifest = Manifest(
        records=sum(kinds.values()),
        valid_events=kinds[VALID],
        duplicates=kinds[DUPLICATE],
        invalid={kind: kinds[kind] for kind in kinds_for(fmt)},
        events_by_type={event_type: stream.events_by_type[event_type] for event_type in event_types()},
        files=files,
        format=fmt,
        seed=config.seed,
    )
    with _create(output, CATALOGUE_NAME) as handle:
        # The stream's pools: building them again would cost a tenth of a second.
        handle.write(products_csv(stream.pools.products.items))
    with _create(output, MANIFEST_NAME) as handle:
        handle.write(manifest.to_json().encode())
    return manifest
