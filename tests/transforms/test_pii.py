"""The PII hash key: given as text, or as a secret that only the workers read."""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle

import apache_beam as beam
import orjson
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.secret import GcpSecret, Secret

from beam_ecommerce.pipelines.options import OptionsError, RunOptions, pii_key
from beam_ecommerce.records import RawRecord
from beam_ecommerce.transforms import BatchRecords, ProcessEvents, RunContext
from beam_ecommerce.transforms.pii import Pseudonymizer
from tests.samples import sample_event

KEY = "worker-only-key-0123456789"


class EnvironmentSecret(Secret):
    """A stand-in for Secret Manager, which cannot run here: the worker reads the key from its environment."""

    def __init__(self, variable: str) -> None:
        super().__init__()
        self.variable = variable

    def get_secret_bytes(self) -> bytes:
        return os.environ[self.variable].encode()


def test_a_secret_key_is_read_on_the_workers_and_never_serialized_with_the_job(monkeypatch):
    monkeypatch.setenv("TEST_PII_KEY", KEY)
    transform = ProcessEvents(RunContext("run", "test"), EnvironmentSecret("TEST_PII_KEY"))
    assert KEY.encode() not in pickle.dumps(transform), "the job graph carries only the secret's name"
    event = sample_event("page_view")
    with TestPipeline() as pipeline:
        rows = (
            pipeline | beam.Create([RawRecord(orjson.dumps(event), "test#1")]) | BatchRecords() | transform
        ).rows | beam.FlatMap(lambda batch: [row["email_hash"] for row in batch])
        assert_that(rows, equal_to([Pseudonymizer(KEY)(event["email"])]))


def test_options_name_a_secret_version_or_give_a_key_not_both():
    secret = "projects/p/secrets/pii/versions/1"
    chosen = pii_key(PipelineOptions([f"--pii_hash_key_secret={secret}"]).view_as(RunOptions))
    assert isinstance(chosen, GcpSecret) and chosen._version_name == secret
    assert pii_key(PipelineOptions([f"--pii_hash_key={KEY}"]).view_as(RunOptions)) == KEY
    with pytest.raises(OptionsError, match="not both"):
        pii_key(PipelineOptions([f"--pii_hash_key_secret={secret}", "--pii_hash_key=x"]).view_as(RunOptions))


def test_tokens_are_the_keyed_hash_of_the_normalized_value_before_and_after_the_memo_fills():
    pseudonymize = Pseudonymizer(KEY, memo_size=3)
    expected = hmac.new(KEY.encode(), b"jane.doe@example.com", hashlib.sha256).hexdigest()
    values = [" Jane.Doe@Example.com", None, "a@b.co", "c@d.co", "e@f.co", "JANE.DOE@example.com ", None]
    tokens = pseudonymize.many(values)
    assert [token is None for token in tokens] == [value is None for value in values]
    assert tokens[0] == tokens[5] == pseudonymize(" Jane.Doe@Example.com") == expected
    assert len(set(tokens) - {None}) == 4
    assert len(pseudonymize._memo) <= 3
