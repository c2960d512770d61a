"""Writing files atomically, and accepting either a path or an open text file.

Everything aether writes to a path goes through :func:`atomic_write_bytes` or
:func:`atomic_write_text`: the data goes to a temporary file in the target's directory, is flushed
and fsync'ed, and only then renamed over the target with ``os.replace``. A failure at any point
leaves the target as it was (absent, or the old file) and removes the temporary file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import IO, BinaryIO, TextIO, TypeAlias, cast

__all__ = [
    "PathOrText",
    "StrPath",
    "atomic_write_bytes",
    "atomic_write_text",
    "describe",
    "open_text_input",
    "open_text_output",
]

StrPath: TypeAlias = "str | os.PathLike[str]"
#: A path to open, or a text file already open (which is used as is and not closed).
PathOrText: TypeAlias = "str | os.PathLike[str] | TextIO"


def _create_temporary(target: str) -> tuple[int, str]:
    directory, base = os.path.split(os.path.abspath(target))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        temporary = os.path.join(directory, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            # 0o666 and the process umask: the same permissions a plain open() would give.
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue


@contextlib.contextmanager
def _atomic(path: StrPath, binary: bool) -> Iterator[IO[bytes] | IO[str]]:
    target = os.fspath(path)
    fd, temporary = _create_temporary(target)
    try:
        handle: IO[bytes] | IO[str]
        if binary:
            handle = os.fdopen(fd, "wb")
        else:
            handle = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def atomic_write_bytes(path: StrPath) -> Iterator[BinaryIO]:
    """Open ``path`` for writing bytes; the file appears (or is replaced) only if the block succeeds."""
    with _atomic(path, binary=True) as handle:
        yield cast(BinaryIO, handle)


@contextlib.contextmanager
def atomic_write_text(path: StrPath) -> Iterator[TextIO]:
    """Open ``path`` for writing UTF-8 text with ``\\n`` line ends, atomically (see the module doc)."""
    with _atomic(path, binary=False) as handle:
        yield cast(TextIO, handle)


@contextlib.contextmanager
def open_text_output(file: PathOrText) -> Iterator[TextIO]:
    """Yield a text file to write to: ``file`` itself if it is open, else ``file`` opened atomically."""
    if isinstance(file, (str, os.PathLike)):
        with atomic_write_text(file) as handle:
            yield handle
    else:
        yield file


@contextlib.contextmanager
def open_text_input(file: PathOrText) -> Iterator[TextIO]:
    """Yield a text file to read: ``file`` itself if it is open, else ``file`` opened as UTF-8."""
    if isinstance(file, (str, os.PathLike)):
        with open(file, encoding="utf-8") as handle:
            yield handle
    else:
        yield file


def describe(file: PathOrText) -> str:
    """How to name ``file`` in a message: its path, or an open file's ``name``, or ``<stream>``."""
    if isinstance(file, (str, os.PathLike)):
        return os.fspath(file)
    return str(getattr(file, "name", "<stream>"))
