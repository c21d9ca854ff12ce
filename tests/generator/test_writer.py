"""write_files: files, formats, compression, GCS paths and a manifest that matches them."""

from __future__ import annotations

import csv
import gzip
import io
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest

import beam_ecommerce
from beam_ecommerce.generator import MANIFEST_NAME, GeneratorConfig, Manifest, generate_records, write_files
from beam_ecommerce.generator.catalogue import CATALOGUE_NAME
from beam_ecommerce.schemas.contract import csv_columns, event_types
from tests.generator.support import check_event, parse_csv_line, parse_json_line, rejection

CONFIG = GeneratorConfig(num_events=10_000, seed=3, invalid_rate=0.03, duplicate_rate=0.02)


def _lines(path: Path) -> list[bytes]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def _recount(directory: Path, manifest: Manifest) -> Manifest:
    """The manifest's counts, found again from the files alone."""
    seen: set[str] = set()
    valid, duplicates, invalid, by_type = 0, 0, 0, Counter()
    for name in manifest.files:
        lines = _lines(directory / name)
        if manifest.format == "csv":
            assert lines[0].decode() == ",".join(csv_columns())
            lines = lines[1:]
        for line in lines:
            if rejection(line, manifest.format) is not None:
                invalid += 1
                continue
            event = parse_csv_line(line) if manifest.format == "csv" else parse_json_line(line)
            if event["event_id"] in seen:
                duplicates += 1
            else:
                seen.add(event["event_id"])
                valid += 1
                by_type[event["event_type"]] += 1
    return Manifest(
        records=valid + duplicates + invalid,
        valid_events=valid,
        duplicates=duplicates,
        invalid={"total": invalid},
        events_by_type={event_type: by_type[event_type] for event_type in event_types()},
        files=manifest.files,
        format=manifest.format,
        seed=manifest.seed,
    )


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_files_and_manifest_match(tmp_path, fmt):
    output = tmp_path / "does" / "not" / "exist"
    manifest = write_files(CONFIG, str(output), fmt, records_per_file=3_000)

    assert manifest.files == [f"events-0000{i}.{fmt}" for i in range(4)]
    assert sorted(p.name for p in output.iterdir()) == sorted([*manifest.files, CATALOGUE_NAME, MANIFEST_NAME])
    assert Manifest.from_json((output / MANIFEST_NAME).read_text()) == manifest
    assert [len(_lines(output / name)) - (fmt == "csv") for name in manifest.files] == [3_000, 3_000, 3_000, 1_000]

    valid, invalid, duplicates = CONFIG.planned_counts()
    assert (manifest.records, manifest.valid_events, manifest.duplicates) == (CONFIG.num_events, valid, duplicates)
    assert sum(manifest.invalid.values()) == invalid and all(manifest.invalid.values())
    assert sum(manifest.events_by_type.values()) == valid and set(manifest.events_by_type) == set(event_types())
    assert (manifest.format, manifest.seed) == (fmt, CONFIG.seed)

    recount = _recount(output, manifest)
    assert recount.records == manifest.records
    assert (recount.valid_events, recount.duplicates) == (manifest.valid_events, manifest.duplicates)
    assert recount.invalid["total"] == sum(manifest.invalid.values())
    assert recount.events_by_type == manifest.events_by_type


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_files_hold_the_generated_records_in_order(tmp_path, fmt):
    manifest = write_files(CONFIG, str(tmp_path), fmt, records_per_file=4_000)
    lines = [line for name in manifest.files for line in _lines(tmp_path / name)[(fmt == "csv") :]]
    records = list(generate_records(CONFIG, fmt))
    assert lines == [record.payload for record in records]
    kinds = Counter(record.kind for record in records)
    assert manifest.invalid == {kind: kinds[kind] for kind in manifest.invalid}


def _first_sends(events: Iterable[dict]) -> list[dict]:
    """The events without their re-sends (same ``event_id``), in order."""
    firsts: dict[str, dict] = {}
    for event in events:
        firsts.setdefault(event["event_id"], event)
    return list(firsts.values())


def test_csv_round_trip(tmp_path):
    """Each valid CSV row, read back by the stated rules, is the JSON event."""
    write_files(CONFIG, str(tmp_path / "csv"), "csv")
    write_files(CONFIG, str(tmp_path / "json"), "jsonl")
    with open(tmp_path / "csv" / "events-00000.csv", newline="", encoding="utf-8", errors="replace") as handle:
        header = next(csv.reader(handle))
    assert tuple(header) == csv_columns()
    rows = _lines(tmp_path / "csv" / "events-00000.csv")[1:]
    objects = _lines(tmp_path / "json" / "events-00000.jsonl")
    json_events = _first_sends(parse_json_line(line) for line in objects if rejection(line) is None)
    csv_events = _first_sends(parse_csv_line(row) for row in rows if rejection(row, "csv") is None)
    assert len(csv_events) == CONFIG.planned_counts()[0]
    assert csv_events == json_events
    for event in csv_events:
        check_event(event)


def test_gzip_files_hold_the_same_lines(tmp_path):
    plain = write_files(CONFIG, str(tmp_path / "plain"), "csv", records_per_file=6_000)
    packed = write_files(CONFIG, str(tmp_path / "packed"), "csv", compress=True, records_per_file=6_000)
    assert packed.files == [f"{name}.gz" for name in plain.files]
    for name in plain.files:
        with gzip.open(tmp_path / "packed" / f"{name}.gz", "rt", encoding="utf-8", errors="replace", newline="") as f:
            assert sum(1 for _ in f) == len(_lines(tmp_path / "plain" / name))
        assert _lines(tmp_path / "packed" / f"{name}.gz") == _lines(tmp_path / "plain" / name)


def test_same_config_same_files(tmp_path):
    for attempt in ("a", "b"):
        write_files(CONFIG, str(tmp_path / attempt), "jsonl", compress=True, records_per_file=5_000)
    for path in (tmp_path / "a").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()


def test_no_events_no_data_files(tmp_path):
    manifest = write_files(GeneratorConfig(num_events=0), str(tmp_path))
    assert manifest.files == [] and manifest.records == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([CATALOGUE_NAME, MANIFEST_NAME])


def test_gcs_paths_go_through_beam_filesystems(monkeypatch):
    written: dict[str, io.BytesIO] = {}

    class Handle(io.BytesIO):
        def close(self) -> None:
            written[self.path] = io.BytesIO(self.getvalue())
            super().close()

    def create(path: str, compression_type: str) -> Handle:
        handle = Handle()
        handle.path = path
        return handle

    from apache_beam.io.filesystems import FileSystems

    monkeypatch.setattr(FileSystems, "create", staticmethod(create))
    manifest = write_files(GeneratorConfig(num_events=500), "gs://bucket/landing/run-1", records_per_file=200)
    assert sorted(written) == [
        "gs://bucket/landing/run-1/_manifest.json",
        "gs://bucket/landing/run-1/_products.csv",
        "gs://bucket/landing/run-1/events-00000.jsonl",
        "gs://bucket/landing/run-1/events-00001.jsonl",
        "gs://bucket/landing/run-1/events-00002.jsonl",
    ]
    assert Manifest.from_json(written["gs://bucket/landing/run-1/_manifest.json"].getvalue().decode()) == manifest
    assert sum(buffer.getvalue().count(b"\n") for path, buffer in written.items() if "events-" in path) == 500


def test_progress_bar_goes_to_stderr(tmp_path, capsys):
    write_files(GeneratorConfig(num_events=1_000), str(tmp_path), progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "1.00k/1.00k" in captured.err


def test_a_quiet_local_write_loads_only_what_generating_needs(tmp_path):
    """Start-up is part of the command's throughput: a quiet write of clean records to a
    local folder loads neither Beam (remote files only), tqdm and the multiprocessing lock
    it makes (progress bar only) nor email.utils (one malformation kind). A fresh
    interpreter, running this checkout's package, shows what loads."""
    script = (
        "import sys\n"
        "from beam_ecommerce.generator import GeneratorConfig, write_files\n"
        f"write_files(GeneratorConfig(num_events=2_000, invalid_rate=0.0), {str(tmp_path)!r})\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'apache_beam', 'tqdm', 'multiprocessing'}))\n"
        "print('email.utils' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(beam_ecommerce.__file__).parents[1])}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    assert result.stdout.split("\n")[:2] == ["[]", "False"]
    assert (tmp_path / "_manifest.json").exists()


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="format"):
        write_files(CONFIG, str(tmp_path), "xml")
    with pytest.raises(ValueError, match="records_per_file"):
        write_files(CONFIG, str(tmp_path), records_per_file=0)
