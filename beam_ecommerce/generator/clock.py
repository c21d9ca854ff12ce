"""Time in the generated world: integer microseconds since the epoch, a daily traffic
curve, and fast RFC 3339 formatting (no ``datetime`` object per event)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

# Relative shop traffic per UTC hour of day: quiet nights, busy evenings.
HOURLY_TRAFFIC = (
    0.35, 0.25, 0.2, 0.2, 0.25, 0.35, 0.55, 0.8, 1.0, 1.1, 1.15, 1.2,
    1.25, 1.2, 1.15, 1.15, 1.2, 1.3, 1.45, 1.6, 1.65, 1.5, 1.1, 0.7,
)  # fmt: skip
WEEKEND_TRAFFIC = 1.15

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTES_PER_DAY = 24 * 60
# "THH:MM:" of every minute of a day.
_TIMES_OF_DAY = tuple(f"T{hour:02d}:{minute:02d}:" for hour in range(24) for minute in range(60))


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


class Clock:
    """The window ``[start, start + days)`` of one data set."""

    def __init__(self, start: datetime, days: int) -> None:
        self.start = to_micros(start)
        self.end = self.start + days * DAY
        self._dates: dict[int, str] = {}

        # Piecewise-constant traffic intensity, one piece per (partial) hour of the window;
        # its integral maps "how much traffic has passed" back to a time.
        self._bounds = [self.start]
        self._traffic = [0.0]
        self._rates: list[float] = []
        moment = self.start
        while moment < self.end:
            upper = min((moment // HOUR + 1) * HOUR, self.end)
            hour_start = _EPOCH + timedelta(microseconds=moment)
            rate = HOURLY_TRAFFIC[hour_start.hour] * (WEEKEND_TRAFFIC if hour_start.weekday() >= 5 else 1.0)
            self._rates.append(rate)
            self._traffic.append(self._traffic[-1] + rate * (upper - moment))
            self._bounds.append(upper)
            moment = upper
        self.total_traffic = self._traffic[-1]

    def format(self, micros: int) -> str:
        """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` of a time (microseconds since the epoch)."""
        return self.format_minute(micros // MINUTE, (micros,))[0]

    def format_minute(self, minute: int, times: Iterable[int]) -> list[str]:
        """:meth:`format` of each of ``times``, which all fall in ``minute`` (minutes since the epoch).

        The simulation stamps a minute's events together, once they are sorted: the
        minute's text is made once and each time costs one int-to-str and two slices.
        """
        day, minute_of_day = divmod(minute, MINUTES_PER_DAY)
        date = self._dates.get(day)
        if date is None:
            date = self._dates[day] = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")
        prefix = date + _TIMES_OF_DAY[minute_of_day]
        # One int-to-str for seconds and fraction: the leading 1 keeps their zero padding.
        base = minute * MINUTE - 100_000_000
        return [f"{prefix}{digits[1:3]}.{digits[3:]}Z" for digits in map(str, [micros - base for micros in times])]

    def at_traffic(self, traffic: float) -> int:
        """The time by which ``traffic`` (in ``[0, total_traffic)``) of the window's traffic has passed."""
        piece = min(bisect_right(self._traffic, traffic) - 1, len(self._rates) - 1)
        moment = self._bounds[piece] + int((traffic - self._traffic[piece]) / self._rates[piece])
        return min(moment, self.end - 1)
