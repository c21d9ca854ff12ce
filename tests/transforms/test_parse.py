import csv
import io

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from beam_ecommerce.schemas import csv_columns
from beam_ecommerce.transforms.dead_letter import RecordError
from beam_ecommerce.transforms.parse import csv_rows, parse_csv, parse_json
from tests.samples import sample_event


def _reason(call, *args) -> str:
    with pytest.raises(RecordError) as info:
        call(*args)
    return info.value.error_type


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty_record"),
        (b"   \t", "empty_record"),
        (b'{"event_id": "abc"', "invalid_json"),
        (b"not json", "invalid_json"),
        (b'{"a": NaN}', "invalid_json"),
        (b'{"a": "\xff\xfe"}', "invalid_utf8"),
        (b"[1, 2]", "not_an_object"),
        (b'"text"', "not_an_object"),
        (b"null", "not_an_object"),
    ],
)
def test_parse_json_rejects_with_a_precise_reason(payload, reason):
    assert _reason(parse_json, payload) == reason


def test_parse_json_tolerates_bom_and_crlf_whitespace():
    assert parse_json(b'\xef\xbb\xbf{"a": 1}\r') == {"a": 1}


def _csv_line(event: dict) -> bytes:
    out = io.StringIO()
    cells = []
    for name in csv_columns():
        value = event.get(name)
        cells.append("" if value is None else orjson.dumps(value).decode() if isinstance(value, list) else value)
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue().removesuffix("\n").encode()


@pytest.mark.parametrize("event_type", ["page_view", "order_placed", "payment"])
def test_parse_csv_types_cells_by_the_contract(event_type):
    event = sample_event(event_type)
    parsed = parse_csv(_csv_line(event), csv_columns())
    assert parsed == {k: v for k, v in event.items() if v is not None}


def test_parse_csv_rejects_wrong_column_count_and_bad_types():
    header = csv_columns()
    assert _reason(parse_csv, b"a,b", header) == "csv_column_count"
    event = sample_event("add_to_cart") | {"quantity": "two"}
    assert _reason(parse_csv, _csv_line(event), header) == "csv_type_error"
    assert _reason(parse_csv, b"\xff" + _csv_line(sample_event("payment")), header) == "invalid_utf8"


def test_parse_csv_keeps_quoted_newlines_inside_one_record():
    event = sample_event("page_view") | {"page_url": "/search?q=a\nb"}
    assert parse_csv(_csv_line(event), csv_columns())["page_url"] == "/search?q=a\nb"


@given(st.text(alphabet=st.sampled_from(["a", "é", ",", '"', "\r", "\n", "\x00", " ", "1"]), min_size=1, max_size=40))
def test_csv_rows_are_what_the_csv_module_reads(text):
    """The comma split taken for plain records gives Python's csv rows, or its error, on any
    non-empty text (``parse_csv`` refuses a blank record before)."""
    try:
        expected = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        with pytest.raises(RecordError, match="not a valid CSV record"):
            csv_rows(text)
        return
    assert csv_rows(text) == expected
