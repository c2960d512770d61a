"""The call tree: samples merged along their stacks, root first, one node per function per path."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from aether_perf.analysis.selection import select_samples, stack_totals
from aether_perf.model.frame import FunctionKey
from aether_perf.model.profile import Profile

__all__ = ["ROOT_NAME", "CallNode", "call_tree"]

ROOT_NAME = "<root>"


@dataclass(eq=False, slots=True)
class CallNode:
    """A function reached along one call path.

    ``total_ns``/``samples`` cover every sample passing through the node, ``self_ns``/
    ``self_samples`` those ending in it. ``children`` maps a callee's ``(function, file,
    first_line)`` to its node; frames of one function at different lines share a node. After
    :func:`call_tree` returns, each ``children`` dict iterates by ``total_ns`` descending (ties by
    function, file, first line).
    """

    function: str
    file: str
    first_line: int
    self_ns: int = 0
    total_ns: int = 0
    samples: int = 0
    self_samples: int = 0
    children: dict[FunctionKey, CallNode] = field(default_factory=dict)

    @property
    def key(self) -> FunctionKey:
        """``(function, file, first_line)``."""
        return (self.function, self.file, self.first_line)

    def walk(self) -> Iterator[tuple[int, CallNode]]:
        """``(depth, node)`` for this node (depth 0) and all below it, depth first, in child order."""
        pending: list[tuple[int, CallNode]] = [(0, self)]
        while pending:
            depth, node = pending.pop()
            yield depth, node
            pending.extend((depth + 1, child) for child in reversed(node.children.values()))


def _sort_children(root: CallNode) -> None:
    for _depth, node in root.walk():
        if len(node.children) > 1:
            ordered = sorted(
                node.children.values(), key=lambda c: (-c.total_ns, c.function, c.file, c.first_line)
            )
            node.children = {child.key: child for child in ordered}


def call_tree(profile: Profile, *, thread: int | None = None, include_idle: bool = True) -> CallNode:
    """The call tree of the selected samples, under a root node named ``<root>``.

    The root's totals are the selection's; its ``self_ns`` is the weight of samples with no frames.
    ``thread`` restricts to one thread (InvalidArgument if unknown); ``include_idle=False`` drops
    idle samples.
    """
    totals = stack_totals(profile, select_samples(profile, thread=thread, include_idle=include_idle))
    root = CallNode(ROOT_NAME, "", 0)
    keys = [frame.function_key for frame in profile.frames]
    weights = totals.weight_ns.tolist()
    counts = totals.samples.tolist()
    for stack_id in totals.present():
        weight, count = weights[stack_id], counts[stack_id]
        node = root
        node.total_ns += weight
        node.samples += count
        for frame_index in profile.stacks[stack_id]:
            key = keys[frame_index]
            child = node.children.get(key)
            if child is None:
                child = node.children[key] = CallNode(*key)
            child.total_ns += weight
            child.samples += count
            node = child
        node.self_ns += weight
        node.self_samples += count
    _sort_children(root)
    return root
