"""The contract's string patterns and formats, checked a column at a time with the reference's own regexes.

fastjsonschema searches a ``pattern`` and matches a ``format`` regex, one value per call;
most of the cost is the call. Here a batch's values of one field are joined by newlines
and checked by one call of a *joined* regex derived from the same compiled one: each
value must make up one newline-terminated segment. That is exact only where the regex
cannot match a newline, which is proven on its parse tree (only literals, classes and
groups that exclude ``\\n``; no lookaround, no back-reference, anchors only at the ends);
values that contain a newline are never joined, and each segment is an atomic group, so
the joined match stops exactly at the first segment whose value fails. That value is
confirmed by the reference's own call and the match resumes after it: a column with bad
values costs one joined pass plus one call per bad value. Regexes that cannot be joined
(the e-mail format's lookarounds) are called once per distinct value. Valid values that
recur are remembered, and only values not remembered are checked; a joined column whose
values are mostly new (ids, timestamps) skips the memo for a while, as it would not pay.
"""

from __future__ import annotations

import re
import re._constants as sre  # the parser's opcodes: stable across 3.11-3.13, no public equivalent
import re._parser as sre_parse
from collections.abc import Mapping
from itertools import compress, repeat
from operator import not_
from typing import Any, NamedTuple

# Where recurring values are remembered (e-mails, IP addresses), at most this many per field.
_MEMO_SIZE = 50_000
# A joined column whose values are mostly new (ids, timestamps) skips the memo for this many batches.
_MEMO_PAUSE_BATCHES = 100
_NEWLINE = ord("\n")
_SAFE_CATEGORIES = {sre.CATEGORY_DIGIT, sre.CATEGORY_WORD}


class StringTest(NamedTuple):
    """One regex of the reference validator and how it applies it."""

    regex: re.Pattern
    anchored: bool
    """fastjsonschema ``match``es a format's regex and ``search``es a pattern."""


def string_tests(spec: Mapping[str, Any], compiled: Mapping[str, re.Pattern]) -> tuple[StringTest, ...]:
    """The tests of a string field's ``pattern`` and ``format``; ``KeyError`` if fastjsonschema has no regex for it."""
    tests = []
    if "pattern" in spec:
        tests.append(StringTest(compiled[spec["pattern"]], anchored=False))
    if "format" in spec:
        tests.append(StringTest(compiled[f"{spec['format']}_re_pattern"], anchored=True))
    return tuple(tests)


def _excludes_newline(items) -> bool:
    """Whether no part of a parsed regex (with its anchors removed) can match a newline or look outside its match."""
    for op, arg in items:
        if op is sre.LITERAL:
            ok = arg != _NEWLINE
        elif op is sre.ANY:
            ok = True  # without DOTALL (checked by the caller) '.' never matches a newline
        elif op is sre.IN:
            ok = all(_class_item_excludes_newline(item) for item in arg)
        elif op is sre.BRANCH:
            ok = all(_excludes_newline(branch) for branch in arg[1])
        elif op is sre.SUBPATTERN:
            group, add_flags, del_flags, pattern = arg
            ok = add_flags == 0 and del_flags == 0 and _excludes_newline(pattern)
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            ok = _excludes_newline(arg[2])
        else:
            ok = False
        if not ok:
            return False
    return True


def _class_item_excludes_newline(item) -> bool:
    op, arg = item
    if op is sre.LITERAL:
        return arg != _NEWLINE
    if op is sre.RANGE:
        return not arg[0] <= _NEWLINE <= arg[1]
    return op is sre.CATEGORY and arg in _SAFE_CATEGORIES


def joined_regex(test: StringTest) -> re.Pattern | None:
    """A regex whose match over newline-terminated values ends where the first value failing ``test`` starts.

    Its match ends at the end of the text iff every value passes; ``None`` if that is not provably so.
    """
    source = test.regex.pattern
    if test.regex.flags != re.UNICODE:
        return None
    parsed = list(sre_parse.parse(source))
    starts = bool(parsed) and parsed[0] == (sre.AT, sre.AT_BEGINNING) and source.startswith("^")
    ends = bool(parsed) and parsed[-1] == (sre.AT, sre.AT_END_STRING) and source.endswith(r"\Z")
    body = source[1 if starts else 0 : -2 if ends else None]
    inner = parsed[1 if starts else 0 : -1 if ends else None]
    if not _excludes_newline(inner):
        return None
    # A search tries every start in the value either way; from the end first finds a match that must end there sooner.
    prefix = "" if starts or test.anchored else "[^\n]*" if ends else "[^\n]*?"
    suffix = "" if ends else "[^\n]*"
    return re.compile(f"(?>{prefix}(?:{body}){suffix}\n)*")


class ColumnCheck:
    """One string field's pattern and format over a batch of rows, as the reference checks each value."""

    def __init__(self, field: str, tests: tuple[StringTest, ...], event_types: frozenset[str] | None) -> None:
        self.field = field
        self.tests = tests
        self.event_types = event_types
        """The event types whose field of that name has these tests; ``None``: all that have the field."""
        joined = [joined_regex(test) for test in tests]
        self.joined: list[re.Pattern] | None = None if None in joined else joined
        self.valid: set[str] = set()
        self._memo_pause = 0

    def reject_invalid(self, rows: list[Any]) -> None:
        """Sets to ``None`` the rows whose value of the field fails the check.

        A row is an object with the event's fields as attributes and its type as
        ``event_type`` (the decoder's structs), or ``None``; a field it lacks, or holds
        unset or null, is not checked.
        """
        field, event_types = self.field, self.event_types
        column = list(map(getattr, rows, repeat(field), repeat(None)))
        if event_types is not None:
            column = [
                value if row is not None and row.event_type in event_types else None
                for row, value in zip(rows, column, strict=True)
            ]
        # None and UNSET are falsy like "", which is a value to check: filtering at C speed, "" put back.
        values = list(filter(None, column))
        if "" in column:
            values.append("")
        if not values:
            return
        invalid = self._invalid(values)
        if invalid:
            for i in [i for i, value in enumerate(column) if value in invalid]:
                rows[i] = None

    def _invalid_joined(self, values: list[str]) -> set[str]:
        text = "\n".join(values) + "\n"
        if text.count("\n") != len(values):
            # A value holding a newline would pass for several segments: those are checked on their own.
            joinable = [value for value in values if "\n" not in value]
            alone = self._invalid_each([value for value in values if "\n" in value])
            return alone | self._check(joinable)
        invalid: set[str] = set()
        for regex in self.joined:
            invalid |= self._stoppers(regex, text, values)
        return invalid

    def _stoppers(self, regex: re.Pattern, text: str, values: list[str]) -> set[str]:
        """The values at which the joined ``regex`` stops on ``text``, each confirmed by the reference's call."""
        invalid: set[str] = set()
        start = index = 0
        while (stop := regex.match(text, start).end()) < len(text):
            index += text.count("\n", start, stop)
            invalid |= self._invalid_each([values[index]])
            start = text.index("\n", stop) + 1
            index += 1
        return invalid

    def _invalid(self, values: list[str]) -> set[str]:
        """The values that fail; values that recur are looked up in a memo of valid ones, while that pays."""
        if self._memo_pause:
            self._memo_pause -= 1
            return self._check(values)
        unknown = list(set(values) - self.valid)
        if self.joined is not None and 2 * len(unknown) > len(values):
            # Mostly new values: building the memo costs more than the joined check it saves.
            self._memo_pause = _MEMO_PAUSE_BATCHES
        invalid = self._check(unknown)
        if len(self.valid) + len(unknown) > _MEMO_SIZE:
            self.valid.clear()
        # Only valid values enter the memo: another thread may read it meanwhile.
        self.valid.update(set(unknown) - invalid)
        return invalid

    def _check(self, values: list[str]) -> set[str]:
        """The values that fail, joined where that is exact, else value by value."""
        if not values:
            return set()
        return self._invalid_joined(values) if self.joined is not None else self._invalid_each(values)

    def _invalid_each(self, values: list[str]) -> set[str]:
        """The values that fail a test, each checked by the reference's own call."""
        invalid: set[str] = set()
        for test in self.tests:
            call = test.regex.match if test.anchored else test.regex.search
            invalid.update(compress(values, map(not_, map(call, values))))
        return invalid


def column_checks(
    tests_by_type: Mapping[str, Mapping[str, tuple[StringTest, ...]]], fields_by_type: Mapping[str, Any]
) -> list[ColumnCheck]:
    """One check per field and tests, over the event types that give that field these tests.

    ``tests_by_type`` maps each event type to its checked fields' tests; ``fields_by_type``
    each event type to all its field names.
    """
    by_tests: dict[tuple[str, tuple[StringTest, ...]], set[str]] = {}
    for event_type, tests_by_field in tests_by_type.items():
        for field, tests in tests_by_field.items():
            by_tests.setdefault((field, tests), set()).add(event_type)
    checks = []
    for (field, tests), event_types in by_tests.items():
        # Every row with the field needs the check, unless some type has a field of that name without these tests.
        everywhere = all(t in event_types or field not in fields for t, fields in fields_by_type.items())
        checks.append(ColumnCheck(field, tests, None if everywhere else frozenset(event_types)))
    return checks
