"""The Pub/Sub emulator's lifetime: its log is kept only when it would not start (the real emulator)."""

from __future__ import annotations

import os
import re
import tempfile

import pytest

from beam_ecommerce.io.pubsub_emulator import emulator_missing_reason, pubsub_emulator

PROJECT = "beam-ecommerce-test"
pytestmark = pytest.mark.skipif(emulator_missing_reason() is not None, reason=str(emulator_missing_reason()))


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """``tempfile``'s folder for this test alone, so the logs other tests' emulators leave are not counted."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.mark.e2e
def test_an_emulator_stopped_cleanly_leaves_no_log(temp_dir):
    with pubsub_emulator(PROJECT) as host:
        assert os.environ["PUBSUB_EMULATOR_HOST"] == host
        assert list(temp_dir.glob("pubsub-emulator-*.log"))
    assert os.environ.get("PUBSUB_EMULATOR_HOST") != host
    assert not list(temp_dir.glob("pubsub-emulator-*.log"))


def test_an_emulator_that_does_not_start_in_time_keeps_the_log_its_error_names(temp_dir):
    with pytest.raises(RuntimeError, match="did not start") as raised, pubsub_emulator(PROJECT, timeout=0):
        pass
    (log,) = temp_dir.glob("pubsub-emulator-*.log")
    assert re.search(re.escape(str(log)), str(raised.value))
