"""Clock.format and format_minute against datetime's own RFC 3339 formatting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from beam_ecommerce.generator.clock import MINUTE, Clock

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CLOCK = Clock(datetime(2026, 11, 1, tzinfo=UTC), 1)
# Minutes since the epoch up to the year 9999 (the four-digit years RFC 3339 allows).
LAST_MINUTE = (datetime(9999, 12, 31, 23, 59, tzinfo=UTC) - EPOCH) // timedelta(minutes=1)
MINUTES = st.integers(min_value=0, max_value=LAST_MINUTE)


def rfc3339(micros: int) -> str:
    return (EPOCH + timedelta(microseconds=micros)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@given(MINUTES, st.integers(min_value=0, max_value=MINUTE - 1))
def test_format_is_rfc3339_to_the_microsecond(minute, offset):
    micros = minute * MINUTE + offset
    assert CLOCK.format(micros) == rfc3339(micros)


@given(MINUTES, st.lists(st.integers(min_value=0, max_value=MINUTE - 1), max_size=50))
def test_format_minute_formats_every_time_of_the_minute(minute, offsets):
    times = [minute * MINUTE + offset for offset in sorted(offsets)]
    assert CLOCK.format_minute(minute, times) == [rfc3339(micros) for micros in times]
