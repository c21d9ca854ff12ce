"""The reconciliation's verdict and line: lost, pending (a deferred load) and read failures apart."""

from __future__ import annotations

import pytest

from beam_ecommerce.pipelines.reconciliation import RunSummary


def _summary(**changes) -> RunSummary:
    books = {"run_id": "r1", "records_in": 100, "rows_loaded": 90, "dead_letters": 6, "duplicates": 4}
    return RunSummary(**books | changes)


def test_a_run_whose_books_balance_reconciles():
    summary = _summary()
    assert (summary.lost, summary.awaiting_load, summary.reconciles) == (0, 0, True)
    assert summary.reconciliation_line() == (
        "reconciliation OK: 100 records in = 90 loaded + 6 dead letters + 4 duplicates absorbed"
    )


def test_a_record_nothing_accounts_for_is_lost():
    summary = _summary(rows_loaded=89)
    assert (summary.lost, summary.awaiting_load, summary.reconciles) == (1, 0, False)
    assert summary.reconciliation_line().startswith("reconciliation MISMATCH")
    assert summary.reconciliation_line().endswith("; 1 lost")


def test_a_deferred_load_is_pending_not_lost():
    summary = _summary(rows_loaded=0, duplicates=0, load_pending=True)
    assert (summary.lost, summary.awaiting_load, summary.reconciles) == (0, 94, False)
    line = summary.reconciliation_line()
    assert line.startswith("reconciliation PENDING: 100 records in = 0 loaded + 6 dead letters")
    assert "+ 94 awaiting load;" in line and "--resume r1" in line and "lost" not in line


@pytest.mark.parametrize("load_pending", [False, True])
def test_an_input_not_read_to_its_end_never_reconciles(load_pending):
    summary = _summary(read_failures=("in/e.jsonl@120",), load_pending=load_pending)
    assert not summary.reconciles
    line = summary.reconciliation_line()
    assert line.startswith("reconciliation MISMATCH") and line.endswith("input not read to its end: in/e.jsonl@120")
