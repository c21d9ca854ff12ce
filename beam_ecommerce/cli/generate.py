"""``beam-ecommerce generate``: events to files, a ``gs://`` folder or a Pub/Sub topic."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from beam_ecommerce.cli.errors import PROG, UserError
from beam_ecommerce.generator import GeneratorConfig, write_files
from beam_ecommerce.generator.destination import Destination, DestinationError, choose_destination, clear_output


def _flags(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The flags ``names`` as keyword arguments of the same names."""
    return {name: getattr(args, name) for name in names}


def generator_config(args: argparse.Namespace) -> GeneratorConfig:
    """The generator's settings from the flags ``generate`` and ``demo`` share."""
    return GeneratorConfig(**_flags(args, "num_events", "seed", "invalid_rate", "duplicate_rate", "days"))


def generate_destination(args: argparse.Namespace, environ: Mapping[str, str]) -> Destination:
    """The ``generate`` command's one destination (a topic or a folder), or a one-line ``UserError``."""
    try:
        return choose_destination(
            **_flags(args, "output", "pubsub_topic", "gcs_upload", "gcs_bucket", "gcs_prefix"),
            file_format=args.format,
            day=args.date or datetime.now(UTC).date(),
            environ=environ,
        )
    except DestinationError as error:
        raise UserError(str(error)) from None


def handle_generate(args: argparse.Namespace) -> int:
    destination = generate_destination(args, os.environ)
    print(f"{PROG} generate: to {destination.topic or destination.output} ({destination.why})", file=sys.stderr)
    if destination.topic:
        return _publish(args, destination.topic)
    try:
        clear_output(destination.output, args.overwrite)
    except DestinationError as error:
        raise UserError(str(error)) from None
    started = time.perf_counter()
    manifest = write_files(
        generator_config(args), destination.output, destination.file_format, compress=args.gzip, progress=not args.quiet
    )
    elapsed = time.perf_counter() - started
    print(
        f"wrote {manifest.records} records ({manifest.valid_events} valid events, {manifest.duplicates} duplicates,"
        f" {sum(manifest.invalid.values())} malformed) to {destination.output} in {elapsed:.1f}s"
        f" ({manifest.records / max(elapsed, 1e-9):,.0f} records/s)"
    )
    return 0


def _publish(args: argparse.Namespace, topic: str) -> int:
    from beam_ecommerce.generator.publish import publish_events  # the Pub/Sub client: only when publishing

    started = time.perf_counter()
    try:
        kinds = publish_events(generator_config(args), topic, args.rate)
    except Exception as error:  # noqa: BLE001 - the client's errors (no topic, no credentials) are the user's to fix
        raise UserError(f"cannot publish to {topic}: {type(error).__name__}: {error}") from None
    elapsed = time.perf_counter() - started
    print(f"published {sum(kinds.values())} messages {dict(sorted(kinds.items()))} in {elapsed:.1f}s")
    return 0
