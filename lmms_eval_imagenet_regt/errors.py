"""The one error type for bad input, so every message names where the bad value came from."""

from __future__ import annotations

from pathlib import Path

#: Longest value shown in a message: a 1 MB field must not become a 1 MB error line.
_SHOWN_CHARS = 120
#: "No value to show" (None is a value worth showing: `"answer": null`).
_NOTHING = object()


class InputError(ValueError):
    """A file, row or field that cannot be used as given.

    The message always names the source and the place in it — `file:line` for text files, `file row N` for
    table rows, `file entry N` for the N-th entry of a JSON document — and the offending value, because a
    user fixing a 50,000-row label file needs to know exactly where to look.
    """

    def __init__(
        self,
        source: str | Path,
        reason: str,
        *,
        line: int | None = None,
        row: int | None = None,
        entry: int | str | None = None,
        value: object = _NOTHING,
    ):
        where = str(source)
        if line is not None:
            where += f":{line}"
        elif row is not None:
            where += f" row {row}"
        elif entry is not None:
            where += f" entry {entry}"
        shown = f" (got {shorten(value)})" if value is not _NOTHING else ""
        super().__init__(f"{where}: {reason}{shown}")


def shorten(value: object) -> str:
    """`repr(value)`, cut to a readable length and kept on one line."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS]}… ({len(text)} characters)"
