"""Typed pipeline options: the parameters of the batch pipeline (and of its Flex Template)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineRunner
from apache_beam.utils.secret import Secret

from beam_ecommerce.io.duckdb.warehouse import LOCK_WAIT_SECONDS
from beam_ecommerce.io.files import OVERSIZED_PREFIX_BYTES
from beam_ecommerce.local_defaults import DEFAULT_WAREHOUSE, default_dead_letter_dir
from beam_ecommerce.records import DEFAULT_BATCH_SIZE, DEFAULT_MAX_RECORD_BYTES
from beam_ecommerce.transforms.pii import resolve_pii_key

DUCKDB = "duckdb"
BIGQUERY = "bigquery"


class OptionsError(ValueError):
    """The options do not describe a runnable pipeline."""


def new_run_id() -> str:
    """A sortable, unique run id such as ``20261126T150000Z-1f2e3d``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)


class RunOptions(PipelineOptions):
    """Options every run of the transform core shares: its id, PII key and batching, and the warehouse it lands in.

    Not the source's: where records come from is ``BatchOptions``' (files), ``StreamingOptions``'
    (Pub/Sub) or ``ReplayOptions``' (dead letters).
    """

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        parser.add_argument("--run_id", default=None, help="Id stamped on every row and dead letter (default: new).")
        parser.add_argument(
            "--pii_hash_key",
            default=None,
            help="Key of the HMAC that pseudonymizes PII (default: $BEAM_ECOMMERCE_PII_KEY, else a public dev key).",
        )
        parser.add_argument(
            "--pii_hash_key_secret",
            default=None,
            help="Secret Manager version (projects/P/secrets/S/versions/V) holding the PII hash key, read by "
            "the workers: the key never appears among the job's options.",
        )
        parser.add_argument(
            "--batch_size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Records per batch in the core (default {DEFAULT_BATCH_SIZE}: it measured less CPU per event "
            "than 2000 or 5000).",
        )
        parser.add_argument(
            "--core",
            choices=("fast", "reference"),
            default="fast",
            help="fast (default): decoders generated from the contract judge each batch at once, the rest goes "
            "record by record; reference: every record through the stages one by one. Same rows and dead letters.",
        )
        parser.add_argument(
            "--sink",
            choices=(DUCKDB, BIGQUERY),
            default=DUCKDB,
            help="Warehouse: the local DuckDB file (default) or BigQuery.",
        )
        parser.add_argument("--duckdb_path", default=DEFAULT_WAREHOUSE, help="DuckDB warehouse file (sink=duckdb).")
        parser.add_argument(
            "--duckdb_memory_limit", default="512MB", help="Memory DuckDB may use while loading (sink=duckdb)."
        )
        parser.add_argument(
            "--warehouse_lock_timeout_seconds",
            type=float,
            default=LOCK_WAIT_SECONDS,
            help="How long a run waits for another process (dbt, the dashboard, another run) to let go of the "
            "DuckDB file, at start and at its load (sink=duckdb; default %(default)g s). Readers stand aside "
            "while a run waits; a batch whose load still cannot get the file keeps its staged work for "
            "--resume; a stream stops with an error and leaves what it could not load unacknowledged, for "
            "Pub/Sub to redeliver.",
        )
        parser.add_argument(
            "--staging_dir",
            default=None,
            help="Where rows are staged as JSONL before the DuckDB load (default: next to the warehouse).",
        )
        parser.add_argument(
            "--bigquery_dataset",
            default=None,
            help="PROJECT:DATASET holding raw_events and dead_letter (sink=bigquery).",
        )
        parser.add_argument(
            "--dead_letter_dir",
            default=None,
            help="Folder or gs:// prefix for dead-letter JSONL files (default: dead_letter/ beside the DuckDB file; "
            "a gs:// prefix is required on Dataflow).",
        )


# Runners whose workers are this process or its children: their local disk is the user's.
_LOCAL_RUNNERS = frozenset({"direct", "bundlebaseddirect", "switchingdirect", "fnapi", "prism", "interactive"})


def runner_name(options: PipelineOptions) -> str:
    """The runner the options ask for, as given (``DirectRunner`` when none is)."""
    return options.view_as(StandardOptions).runner or "DirectRunner"


def batch_runner(options: PipelineOptions) -> PipelineRunner | None:
    """Beam's FnApiRunner where the options ask for the DirectRunner (or no runner); else ``None``: Beam's choice.

    Beam 2.77's DirectRunner first tries Prism, which downloads a binary from GitHub: a
    local batch would need the network on its first run and run on another engine wherever
    the network is there. Offline it falls back to the FnApiRunner after 0.15-0.4 s. Batch
    pipelines go straight to the FnApiRunner, the engine ``--local_workers`` sets the
    processes of and the tests run on.
    """
    if runner_name(options) != "DirectRunner":
        return None
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    return FnApiRunner()


def runs_locally(options: PipelineOptions) -> bool:
    """Whether the pipeline runs on this machine (so local paths and the dev key are the user's own)."""
    name = runner_name(options).rsplit(".", 1)[-1].lower()
    return name.removesuffix("runner") in _LOCAL_RUNNERS


def dead_letter_dir(options: RunOptions) -> str:
    """Where the run writes its dead-letter files, set on ``options`` so the whole run agrees.

    Locally it defaults to ``dead_letter/`` beside the warehouse file. On any other runner
    it must be a ``gs://`` prefix, checked now at launch: a worker's local folder vanishes
    with the worker, and the dead letters with it.
    """
    if runs_locally(options):
        options.dead_letter_dir = options.dead_letter_dir or default_dead_letter_dir(options.duckdb_path)
    elif not (options.dead_letter_dir or "").startswith("gs://"):
        raise OptionsError(
            f"--runner={runner_name(options)} needs --dead_letter_dir=gs://BUCKET/PREFIX "
            f"(not {options.dead_letter_dir!r}): a worker's local disk vanishes with the worker"
        )
    return options.dead_letter_dir


def pii_key(options: RunOptions) -> str | Secret:
    """The PII hash key the options ask for (``resolve_pii_key``), or ``OptionsError``.

    Only a local run may fall back to the public development key: any other runner must be
    given a key or, better, the Secret Manager version holding it.
    """
    if not (options.pii_hash_key or options.pii_hash_key_secret or runs_locally(options)):
        raise OptionsError(
            f"--runner={runner_name(options)} needs --pii_hash_key_secret=projects/P/secrets/S/versions/V "
            "(or --pii_hash_key): the public development key is for local runs only"
        )
    try:
        return resolve_pii_key(options.pii_hash_key, options.pii_hash_key_secret)
    except ValueError as error:
        raise OptionsError(f"{error}: --pii_hash_key or --pii_hash_key_secret") from None


def check_input_files(pattern: str | None) -> int:
    """The total size in bytes of the files ``pattern`` (``--input``) matches; ``OptionsError`` if it
    matches none or they cannot be listed. A missing pattern (0) is the builder's to report.
    Checked before a run, not when a template is built."""
    if not pattern:
        return 0
    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception as error:  # noqa: BLE001 - any failure to list the input is the user's to fix
        raise OptionsError(f"cannot read input {pattern!r}: {error}") from None
    if not matched:
        raise OptionsError(f"no input files match {pattern!r}")
    return sum(metadata.size_in_bytes for metadata in matched)


class BatchOptions(PipelineOptions):
    """Options of the batch pipeline: which files to read."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        parser.add_argument("--input", default=None, help="File pattern to read: a local path or gs://, globs allowed.")
        parser.add_argument(
            "--input_format",
            choices=("auto", "jsonl", "csv"),
            default="auto",
            help="Format of the input files (default: by extension; .gz is decompressed).",
        )
        parser.add_argument(
            "--split_bytes",
            type=int,
            default=64 << 20,
            help="Size of the ranges large JSONL files are read in (one local worker reads each file whole).",
        )
        parser.add_argument(
            "--resume",
            default=None,
            metavar="RUN_ID",
            help="Load what run RUN_ID staged but could not load (the warehouse stayed locked), without reading "
            "or processing its input again (sink=duckdb; give the same options as that run).",
        )
        parser.add_argument(
            "--max_record_bytes",
            type=int,
            default=DEFAULT_MAX_RECORD_BYTES,
            help="Largest record (line or CSV row) the pipeline processes, in bytes (default 10 MiB). A larger "
            "one becomes a dead letter (stage parse, reason record_too_large) with its length, its sha256 and "
            f"its first {OVERSIZED_PREFIX_BYTES} bytes; it is never held in memory whole.",
        )
        parser.add_argument(
            "--local_workers",
            default="auto",
            help="DirectRunner worker processes (Beam's --direct_num_workers with multi_processing): a number, or "
            "auto (default): one per CPU core for 512 MB of input (about 1.2M events) or more, one process below. "
            "On 2 cores two measured 1.09x faster than one at 1M events and 1.31x at 10M, and slower at 500k, "
            "for 1.3x the CPU and more memory (benchmarks/README.md).",
        )
