"""The call paths of a profile as a trie of functions: what the HTML flamegraph is built from.

A node is a function reached along one path from the root (node 0); frames of one function at
different lines share a node, as in :func:`aether_perf.analysis.calltree.call_tree`. Node ids grow
with insertion, so a parent's id is always below its children's: summing node weights from the last
id down to 1 into each parent gives inclusive totals in one pass (the page does exactly that).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from aether_perf.model.frame import FunctionKey
from aether_perf.model.profile import Profile

__all__ = ["PathTrie", "build_trie"]


@dataclass
class PathTrie:
    """``functions`` is the function table; node ``n`` runs ``functions[func[n]]`` under ``parent[n]``.

    The root (node 0) has ``parent`` and ``func`` -1. ``leaf_of_stack[s]`` is the node where stack
    ``s`` of the profile ends (0 for an empty stack, and for stacks left out of the trie).
    """

    functions: list[FunctionKey] = field(default_factory=list)
    parent: list[int] = field(default_factory=lambda: [-1])
    func: list[int] = field(default_factory=lambda: [-1])
    children: dict[tuple[int, int], int] = field(default_factory=dict)
    function_index: dict[FunctionKey, int] = field(default_factory=dict)
    leaf_of_stack: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, dtype=np.int32))

    def __len__(self) -> int:
        return len(self.parent)

    def find(self, path: Iterable[FunctionKey]) -> int | None:
        """The node of ``path`` (function identities, root first), or None if the trie lacks it."""
        node = 0
        for key in path:
            index = self.function_index.get(key)
            child = None if index is None else self.children.get((node, index))
            if child is None:
                return None
            node = child
        return node

    def add_function(self, key: FunctionKey) -> int:
        index = self.function_index.get(key)
        if index is None:
            index = self.function_index[key] = len(self.functions)
            self.functions.append(key)
        return index

    def add_child(self, node: int, function: int) -> int:
        child = self.children.get((node, function))
        if child is None:
            child = self.children[(node, function)] = len(self.parent)
            self.parent.append(node)
            self.func.append(function)
        return child


def build_trie(profile: Profile, stack_ids: Iterable[int]) -> PathTrie:
    """The trie of the given stacks of ``profile`` (normally those with samples)."""
    trie = PathTrie()
    keys = [frame.function_key for frame in profile.frames]
    leaf = np.zeros(len(profile.stacks), dtype=np.int32)
    for stack_id in stack_ids:
        node = 0
        for frame_index in profile.stacks[stack_id]:
            node = trie.add_child(node, trie.add_function(keys[frame_index]))
        leaf[stack_id] = node
    trie.leaf_of_stack = leaf
    return trie
