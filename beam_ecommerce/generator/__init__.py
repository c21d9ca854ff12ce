"""Deterministic generator of realistic shop events, with malformed records and duplicates mixed in.

``generate_events`` streams the records of a data set in JSON form; ``write_files``
writes them as JSONL or CSV files (local or ``gs://``) with a ``_manifest.json`` that
tells what was generated.
"""

from beam_ecommerce.generator.config import GeneratedRecord, GeneratorConfig, Manifest
from beam_ecommerce.generator.malformations import CSV_KINDS, DICT_KINDS, JSON_KINDS
from beam_ecommerce.generator.record_stream import generate_events, generate_records
from beam_ecommerce.generator.writer import MANIFEST_NAME, write_files

__all__ = [
    "CSV_KINDS",
    "DICT_KINDS",
    "GeneratedRecord",
    "GeneratorConfig",
    "JSON_KINDS",
    "MANIFEST_NAME",
    "Manifest",
    "generate_events",
    "generate_records",
    "write_files",
]
