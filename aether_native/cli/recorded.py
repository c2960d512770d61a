"""Opening the recordings `annotate` and `diagnose` read: a profile or a heap snapshot (.aprof),
told apart by the document's kind. Bad files are one-line usage errors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aether_native.cli.errors import UsageError

if TYPE_CHECKING:
    from aether_perf.model import Profile
    from aether_perf.model.heap import HeapSnapshot


def load_recording(path: Path) -> Profile | HeapSnapshot:
    """The profile or heap snapshot in `path`."""
    if not path.exists():
        raise UsageError(f"no such file: '{path}'")
    if path.is_dir():
        raise UsageError(f"'{path}' is a directory, not a profile")
    from aether_perf.errors import AetherError
    from aether_perf.model.fileformat import read_document

    try:
        kind = read_document(path).kind
        if kind == "heap":
            from aether_perf.model.heap import load_heap

            return load_heap(path)
        from aether_perf.model import load

        return load(path)
    except OSError as exc:
        raise UsageError(f"cannot read '{path}': {exc.strerror or exc}") from None
    except AetherError as exc:
        raise UsageError(str(exc)) from None
    except Exception as exc:
        raise UsageError(f"cannot read '{path}': {type(exc).__name__}: {exc}") from None


def split_recordings(paths: list[Path]) -> tuple[list[Profile], list[HeapSnapshot]]:
    """Load each path; the profiles and the heap snapshots, in the order given."""
    from aether_perf.model.heap import HeapSnapshot

    profiles: list[Profile] = []
    heaps: list[HeapSnapshot] = []
    for path in paths:
        item = load_recording(path)
        if isinstance(item, HeapSnapshot):
            heaps.append(item)
        else:
            profiles.append(item)
    return profiles, heaps
