"""Reading the files users hand us, and writing ours whole or not at all.

Readers turn every problem (missing file, bytes that are not UTF-8, JSON that does not parse) into one
`InputError` naming the file and line; a byte-order mark is accepted everywhere. Writers go through a
temporary file in the same folder and `os.replace`, so a killed process leaves the old file or the new one,
never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError

_UMASK = os.umask(0)
os.umask(_UMASK)


def read_text(path: str | Path) -> str:
    """The whole file as text (UTF-8, an optional byte-order mark dropped)."""
    return decode_text(_read_bytes(path), path)


def decode_text(data: bytes, source: str | Path) -> str:
    """Bytes as UTF-8 text (an optional byte-order mark dropped); bad bytes are named by line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise InputError(source, f"not UTF-8 text (byte {error.start})", line=line) from None


def _read_bytes(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, not a file") from None
    except OSError as error:
        raise InputError(path, f"cannot be read: {error.strerror}") from None


def load_json(path: str | Path) -> object:
    """A JSON document; a syntax error names its line."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise InputError(path, f"not valid JSON: {error.msg} (column {error.colno})", line=error.lineno) from None
    except RecursionError:
        raise InputError(path, "not usable JSON: nested too deeply") from None


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed value) for each non-blank line."""
    for line, text in enumerate(read_text(path).splitlines(), start=1):
        if not text.strip():
            continue
        try:
            yield line, json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(path, f"not valid JSON: {error.msg} (column {error.colno})", line=line) from None
        except RecursionError:
            raise InputError(path, "not usable JSON: nested too deeply", line=line) from None


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path`; on success it replaces `path`, on any error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    os.chmod(temporary, 0o666 & ~_UMASK)  # as open() would create it, not mkstemp's owner-only mode
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file (UTF-8) whole or not at all."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """A fresh temporary folder beside `path` that replaces `path` (and all it held) on success.

    The old folder is moved aside before the new one takes its name and removed after, so at every moment
    `path` is either the old complete folder, the new complete folder, or (for an instant) absent.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(temporary, 0o777 & ~_UMASK)
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        os.replace(path, old / "previous")
    os.replace(temporary, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
