"""Property tests of the transform core on Beam's TestPipeline.

For any mix of valid events, events broken in ways the contract must reject, and
random bytes: every record lands exactly once, in rows or in the dead letter; valid
rows satisfy the contract; dead letters keep the exact original bytes.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from datetime import date, datetime

import apache_beam as beam
import orjson
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beam_ecommerce.collector import COLLECTOR_THRESHOLDS
from beam_ecommerce.records import RawRecord
from beam_ecommerce.records.dead_letter import original_payload
from beam_ecommerce.schemas import RAW_EVENTS
from beam_ecommerce.transforms import ProcessEvents, RunContext
from beam_ecommerce.transforms.enrich import RowEnricher
from beam_ecommerce.transforms.pii import Pseudonymizer
from beam_ecommerce.transforms.process import RunFastCore, core_stages
from tests.samples import EVENT_TYPES, sample_event

CONTEXT = RunContext("test-run", "test-version")
KEY = "test-key"
_text = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40)


@st.composite
def valid_events(draw) -> dict:
    event = sample_event(
        draw(st.sampled_from(EVENT_TYPES)), event_id=draw(st.from_regex(r"[a-z0-9]{8,32}", fullmatch=True))
    )
    event["user_id"] = draw(_text)
    event["session_id"] = draw(_text)
    if draw(st.booleans()):
        del event["email"]
    return event


def _drop_required(event: dict, draw) -> dict:
    field = draw(st.sampled_from(["event_id", "occurred_at", "user_id", "session_id"]))
    return {k: v for k, v in event.items() if k != field}


def _wrong_type(event: dict, draw) -> dict:
    return event | {
        draw(st.sampled_from(["schema_version", "user_id", "occurred_at"])): draw(
            st.one_of(st.lists(st.integers(-(2**63), 2**63 - 1)), st.booleans())
        )
    }


def _unknown_field(event: dict, draw) -> dict:
    return event | {"zz_" + draw(st.from_regex(r"[a-z]{1,10}", fullmatch=True)): draw(_text)}


def _unknown_type(event: dict, draw) -> dict:
    return event | {"event_type": "zz_" + draw(st.from_regex(r"[a-z]{1,10}", fullmatch=True))}


@st.composite
def broken_payloads(draw) -> bytes:
    event = draw(valid_events())
    kind = draw(st.sampled_from(["drop", "type", "field", "unknown_type", "truncate", "array"]))
    if kind == "truncate":
        encoded = orjson.dumps(event)
        return encoded[: draw(st.integers(0, len(encoded) - 1))]
    if kind == "array":
        return orjson.dumps([event])
    mutate = {"drop": _drop_required, "type": _wrong_type, "field": _unknown_field, "unknown_type": _unknown_type}[kind]
    return orjson.dumps(mutate(event, draw))


_junk = st.binary(max_size=200).filter(lambda b: not b.strip().startswith(b"{"))

inputs = st.lists(
    st.one_of(
        valid_events().map(lambda e: ("valid", orjson.dumps(e))),
        broken_payloads().map(lambda p: ("broken", p)),
        _junk.map(lambda p: ("broken", p)),
    ),
    max_size=40,
)


def _process(pipeline, payloads: list[bytes], batch_size: int, case: str = "test"):
    """``payloads`` in batches of ``batch_size`` through their own ``ProcessEvents``; sources are ``{case}:{i}``."""
    records = [RawRecord(p, f"{case}:{i}") for i, p in enumerate(payloads)]
    batches = [records[i : i + batch_size] for i in range(0, len(records), batch_size)]
    processed = (
        pipeline
        | f"Create {case}" >> beam.Create(batches, reshuffle=False)
        | f"Process {case}" >> ProcessEvents(CONTEXT, KEY)
    )
    rows = processed.rows | f"Unbatch {case}" >> beam.FlatMap(lambda rows: rows)
    return rows, processed.dead_letters


def _run(payloads: list[bytes], batch_size: int):
    pipeline = TestPipeline()
    return (pipeline, *_process(pipeline, payloads, batch_size))


# A TestPipeline's start-up is most of a small case's cost: each example runs CASES_PER_PIPELINE
# generated cases, each in its own branch of one pipeline (its own Create and ProcessEvents, as
# in a pipeline of its own), so 4 examples run the 20 cases that 20 one-case examples ran.
CASES_PER_PIPELINE = 5


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(inputs, st.integers(1, 7)), min_size=CASES_PER_PIPELINE, max_size=CASES_PER_PIPELINE))
def test_every_record_lands_exactly_once(cases):
    pipeline = TestPipeline()
    rows, dead_letters, expected_rows, expected_dead = [], [], [], []
    for number, (records, batch_size) in enumerate(cases):
        case = f"case{number}"
        case_rows, case_dead = _process(pipeline, [payload for _, payload in records], batch_size, case)
        rows.append(case_rows)
        dead_letters.append(case_dead)
        expected_rows += [f"{case}:{i}" for i, (kind, _) in enumerate(records) if kind == "valid"]
        expected_dead += [(f"{case}:{i}", p) for i, (kind, p) in enumerate(records) if kind == "broken"]
    # The sources name their case: one comparison over all cases is each case's comparison.
    assert_that(
        rows | "All rows" >> beam.Flatten() | "Sources" >> beam.Map(lambda row: row["source"]),
        equal_to(expected_rows),
        label="rows",
    )
    assert_that(
        dead_letters
        | "All dead letters" >> beam.Flatten()
        | "Payloads" >> beam.Map(lambda dl: (dl["source"], original_payload(dl))),
        equal_to(expected_dead),
        label="dead letters keep exact bytes",
    )
    pipeline.run()


def _conforms(row: dict) -> bool:
    columns = set(RAW_EVENTS.column_names)
    required = {c.name for c in RAW_EVENTS.columns if c.mode == "REQUIRED"}
    return (
        set(row) <= columns
        and required <= {k for k, v in row.items() if v is not None}
        and isinstance(row["occurred_at"], datetime)
        and row["occurred_at"].utcoffset().total_seconds() == 0
        and isinstance(row["event_date"], date)
        and row["event_date"] == row["occurred_at"].date()
        and "email" not in row
        and "ip_address" not in row
    )


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.lists(valid_events(), min_size=1, max_size=20), min_size=CASES_PER_PIPELINE, max_size=CASES_PER_PIPELINE
    )
)
def test_valid_rows_satisfy_the_contract(cases):
    """10 generated cases, CASES_PER_PIPELINE to a pipeline; every case's every row conforms."""
    pipeline = TestPipeline()
    rows, expected = [], []
    for number, events in enumerate(cases):
        case = f"case{number}"
        rows.append(_process(pipeline, [orjson.dumps(e) for e in events], 5, case)[0])
        expected += [(case, True)] * len(events)
    assert_that(
        rows | "All rows" >> beam.Flatten() | beam.Map(lambda row: (row["source"].split(":")[0], _conforms(row))),
        equal_to(expected),
    )
    pipeline.run()


def test_enrich_derives_revenue_and_pseudonymizes_pii():
    event = sample_event("order_placed")
    pipeline, rows, _ = _run([orjson.dumps(event)], 1)
    expected = (249.9 + 12.5 * 3, Pseudonymizer(KEY)(event["email"]), Pseudonymizer(KEY)(event["ip_address"]))
    assert_that(
        rows | beam.Map(lambda r: (r["revenue"], r["email_hash"], r["ip_address_hash"])),
        equal_to([(round(expected[0], 2), expected[1], expected[2])]),
    )
    pipeline.run()


def test_the_enrichers_columns_hold_every_column_enriching_adds():
    """``RowEnricher.columns`` names what ``enrich_rows`` adds without running it: the fast core
    trusts it to skip each batch's column check, so every event type's enriched row must fit it."""
    enricher = RowEnricher(CONTEXT, Pseudonymizer(KEY))
    for event_type in EVENT_TYPES:
        row = sample_event(event_type)
        fields = frozenset(row)
        enricher.enrich_rows([row], ["f.jsonl:1"])
        assert set(row) <= enricher.columns(fields), (event_type, set(row) - enricher.columns(fields))


def test_dead_letters_say_where_and_why():
    payloads = [b"nope", orjson.dumps(sample_event("payment") | {"payment_method": "barter"})]
    pipeline, _, dead_letters = _run(payloads, 2)
    assert_that(
        dead_letters | beam.Map(lambda d: (d["source"], d["stage"], d["error_type"], d["event_id"], d["run_id"])),
        equal_to(
            [
                ("test:0", "parse", "invalid_json", None, "test-run"),
                ("test:1", "validate", "schema_enum", "evt-00000001", "test-run"),
            ]
        ),
    )
    pipeline.run()


def test_the_three_stage_transforms_chained_equal_process_events():
    from beam_ecommerce.transforms import EnrichEvents, ParseEvents, ValidateEvents

    payloads = [orjson.dumps(sample_event(t, f"evt-{i:08d}")) for i, t in enumerate(EVENT_TYPES)]
    payloads += [b"{", orjson.dumps(sample_event("payment") | {"amount": -1})]
    records = [RawRecord(p, f"test:{i}") for i, p in enumerate(payloads)]
    pipeline = TestPipeline()
    batches = pipeline | beam.Create([records[:4], records[4:]], reshuffle=False)
    parsed = batches | ParseEvents(CONTEXT)
    valid = parsed.events | ValidateEvents(CONTEXT)
    enriched = valid.events | EnrichEvents(CONTEXT, KEY)
    chained_rows = enriched.events | "Rows" >> beam.FlatMap(lambda events: [e.fields["source"] for e in events])
    chained_dead = (parsed.dead_letter, valid.dead_letter, enriched.dead_letter) | beam.Flatten()
    core = batches | ProcessEvents(CONTEXT, KEY)
    assert_that(chained_rows, equal_to([f"test:{i}" for i in range(5)]), label="chained rows")
    assert_that(
        core.rows | beam.FlatMap(lambda rows: [r["source"] for r in rows]),
        equal_to([f"test:{i}" for i in range(5)]),
        label="core rows",
    )
    dead = [("test:5", "invalid_json"), ("test:6", "schema_minimum")]
    assert_that(
        chained_dead | "D1" >> beam.Map(lambda d: (d["source"], d["error_type"])), equal_to(dead), label="chained dead"
    )
    assert_that(
        core.dead_letters | "D2" >> beam.Map(lambda d: (d["source"], d["error_type"])),
        equal_to(dead),
        label="core dead",
    )
    pipeline.run()


def test_the_fast_core_raises_the_collector_thresholds_and_never_lowers_one():
    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10_000)
        core = RunFastCore(core_stages(RunContext("r", "t"), "key"))
        core.setup()
        assert gc.get_threshold() == (COLLECTOR_THRESHOLDS[0], COLLECTOR_THRESHOLDS[1], 10_000)
    finally:
        gc.set_threshold(*saved)


def test_a_process_that_ran_the_fast_core_freezes_the_collectors_objects_as_it_exits():
    """Exit handlers run last-registered first: one registered before the core starts sees the freeze.

    Counted against what was frozen before (an import may freeze objects of its own).
    """
    script = (
        "import atexit, gc\n"
        "frozen = {}\n"
        "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > frozen['running']))\n"
        "from beam_ecommerce.records.dead_letter import RunContext\n"
        "from beam_ecommerce.transforms.process import RunFastCore, core_stages\n"
        "handlers, frozen['before'] = atexit._ncallbacks(), gc.get_freeze_count()\n"
        "for _ in range(2):\n"
        "    RunFastCore(core_stages(RunContext('r', 't'), 'key')).setup()\n"
        "frozen['running'] = gc.get_freeze_count()\n"
        "print('frozen while running:', frozen['running'] > frozen['before'], 'handlers added:',"
        " atexit._ncallbacks() - handlers)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert run.stdout.splitlines() == ["frozen while running: False handlers added: 1", "frozen at exit: True"]
