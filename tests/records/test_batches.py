"""Row batches through their coder: dict rows as they are, typed rows (the decoder's structs) as their dicts."""

from __future__ import annotations

from datetime import UTC, date, datetime

import orjson

from beam_ecommerce.records import RowBatch
from beam_ecommerce.records.batches import RowBatchCoder, rows_as_dicts
from beam_ecommerce.schemas.decoders import contract_decoder
from tests.samples import sample_event


def _typed_row():
    (row,) = contract_decoder().decode_batch([orjson.dumps(sample_event("order_placed"))])
    row.occurred_at = datetime(2026, 11, 3, 10, 15, tzinfo=UTC)
    row.event_date = date(2026, 11, 3)
    return row


def test_typed_rows_are_made_dicts_with_their_unset_columns_left_out_and_their_dates_kept():
    (row,) = rows_as_dicts([_typed_row()])
    assert type(row) is dict and row["event_type"] == "order_placed"
    assert row["event_date"] == date(2026, 11, 3) and row["occurred_at"].tzinfo is UTC
    assert "revenue" not in row and all(type(item) is dict for item in row["items"])


def test_a_batch_of_typed_rows_decodes_as_their_dicts_and_a_batch_of_dicts_as_itself():
    coder = RowBatchCoder()
    typed = RowBatch([_typed_row(), {"event_id": "e-2"}])
    assert coder.decode(coder.encode(typed)) == RowBatch(rows_as_dicts(typed))
    dicts = RowBatch([{"event_id": "e-1", "event_date": date(2026, 11, 3)}])
    assert coder.decode(coder.encode(dicts)) == dicts
