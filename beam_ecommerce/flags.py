"""One flag style a user can rely on: every long option in both spellings, ``--num-events`` and ``--num_events``.

The command line's own options are dashed (``--num-events``); Beam's and the pipelines'
are underscored (``--duckdb_path``, also the Flex Templates' parameter names). Rather
than make users remember which is which, every parser built here accepts both spellings
of each long option and its help shows the dashed one, the style the README documents.

``BothSpellings`` wraps any argparse parser or argument group, Beam's
``_BeamArgumentParser`` included, so that a ``PipelineOptions`` subclass's
``_add_argparse_args`` registers both spellings without a change to the class.
``beam_style`` rewrites the options the command line does not know itself and passes on
to Beam (``--temp-location``) to Beam's underscored spelling.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any


def spellings(option: str) -> tuple[str, ...]:
    """``option`` and its other spelling (``--num-events`` -> ``--num_events``); short options have one."""
    if not option.startswith("--"):
        return (option,)
    name = option[2:]
    other = name.replace("-", "_") if "-" in name else name.replace("_", "-")
    return (option,) if other == name else (option, f"--{other}")


def _with_other_spellings(names: Sequence[str]) -> list[str]:
    """``names`` in their order, each followed by its other spelling (the dest is the same for both)."""
    return list(dict.fromkeys(spelling for name in names for spelling in spellings(name)))


def _dashed_first(names: Sequence[str]) -> list[str]:
    """Both spellings, dashed first: argparse's usage line shows an option's first name."""
    return sorted(_with_other_spellings(names), key=lambda name: name.startswith("--") and "_" in name)


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose options take both spellings and whose help shows the dashed one.

    Its sub-command parsers are of the same class (argparse's default).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DashedHelpFormatter)
        super().__init__(*args, **kwargs)

    def add_argument(self, *names: str, **kwargs: Any) -> argparse.Action:
        return super().add_argument(*_dashed_first(names), **kwargs)


class BothSpellings:
    """A parser or argument group whose ``add_argument`` registers every long option in both spellings."""

    def __init__(self, container: argparse._ActionsContainer) -> None:
        self._container = container

    def add_argument(self, *names: str, **kwargs: Any) -> argparse.Action:
        return self._container.add_argument(*_dashed_first(names), **kwargs)

    def add_value_provider_argument(self, *names: str, **kwargs: Any) -> None:
        """Beam's templated options: Beam names the value provider after the first name, kept first."""
        self._container.add_value_provider_argument(*_with_other_spellings(names), **kwargs)

    def add_argument_group(self, *args: Any, **kwargs: Any) -> BothSpellings:
        return BothSpellings(self._container.add_argument_group(*args, **kwargs))

    def add_mutually_exclusive_group(self, **kwargs: Any) -> BothSpellings:
        return BothSpellings(self._container.add_mutually_exclusive_group(**kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)


class DashedHelpFormatter(argparse.HelpFormatter):
    """Help that lists each option once, in the documented dashed spelling."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        shown = [name for name in action.option_strings if not _underscored_alias(name, action.option_strings)]
        if len(shown) == len(action.option_strings):
            return super()._format_action_invocation(action)
        # A copy, so that parsing still knows every spelling.
        return super()._format_action_invocation(_Renamed(action, shown))


def _underscored_alias(name: str, names: Sequence[str]) -> bool:
    return name.startswith("--") and "_" in name and name.replace("_", "-") in names


class _Renamed(argparse.Action):
    """``action`` as the help shows it: the same in every way but its option strings."""

    def __init__(self, action: argparse.Action, option_strings: list[str]) -> None:
        self.__dict__.update(vars(action))
        self.option_strings = option_strings


def beam_style(args: Sequence[str]) -> list[str]:
    """Options for Beam with dashed names in Beam's underscored spelling; values are left alone.

    Beam's parser knows only ``--temp_location``; a user who writes ``--temp-location``
    (or ``--temp-location=gs://b/t``) means it. Only a token that starts with ``--`` is
    an option name; a value that follows its option is copied as it is.
    """
    rewritten = []
    for arg in args:
        if arg.startswith("--") and arg != "--":
            name, sep, value = arg.partition("=")
            arg = f"--{name[2:].replace('-', '_')}{sep}{value}"
        rewritten.append(arg)
    return rewritten
