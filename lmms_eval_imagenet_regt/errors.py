"""The one error type for bad input, so every message names where the bad value came from."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """A file, row or field that cannot be used as given.

    The message always names the source (file and line, or image id) and the offending value, because a
    user fixing a 50,000-row label file needs to know exactly where to look.
    """

    def __init__(self, source: str | Path, reason: str, *, line: int | None = None, value: object = None):
        where = f"{source}:{line}" if line is not None else str(source)
        shown = f" (got {value!r})" if value is not None else ""
        super().__init__(f"{where}: {reason}{shown}")
