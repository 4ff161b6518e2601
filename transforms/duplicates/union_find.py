"""Connected components of a graph given as a stream of edge chunks, in numpy, in O(nodes) memory.

A disjoint-set forest held as one parent array (parent[x] <= x, so every chain ends at its smallest
node, the component's label). Edges are buffered up to max(nodes, MIN_BUFFER_EDGES) and then joined
all at once: every edge hooks the larger of its two roots under the smaller (`np.minimum.at`, so
concurrent hooks onto one root keep the smallest), then the forest is flattened by pointer jumping
(parent = parent[parent] until nothing changes), and edges whose ends now share a root are dropped;
repeat until none is left (Shiloach and Vishkin's hook-and-compress scheme, "An O(log n) Parallel
Connectivity Algorithm", J. Algorithms 1982). Labels do not depend on the order edges arrive in:
a component is labelled by its smallest node.
"""

from __future__ import annotations

import numpy as np

MIN_BUFFER_EDGES = 1 << 20  # edges joined at once at least (each join costs O(nodes))


class Components:
  """Union-find over nodes 0..n-1 fed with edge chunks (`add`), labelled by `labels`."""

  def __init__(self, num_nodes: int):
    self._parent = np.arange(num_nodes, dtype=np.int64)
    self._buffer, self._buffered = [], 0
    self._limit = max(num_nodes, MIN_BUFFER_EDGES)

  def add(self, first: np.ndarray, second: np.ndarray) -> None:
    """Joins the components of first[k] and second[k] for every k (int arrays of node ids)."""
    if len(first):
      self._buffer.append((np.asarray(first, np.int64), np.asarray(second, np.int64)))
      self._buffered += len(first)
      if self._buffered >= self._limit:
        self._join()

  def labels(self) -> np.ndarray:
    """int64 [n]: each node's component label, the smallest node of its component."""
    self._join()
    return self._parent.copy()

  def _join(self) -> None:
    if not self._buffer:
      return
    first = np.concatenate([f for f, _ in self._buffer])
    second = np.concatenate([s for _, s in self._buffer])
    self._buffer, self._buffered = [], 0
    parent = self._parent
    while len(first):
      roots_first, roots_second = parent[first], parent[second]
      apart = roots_first != roots_second
      first, second = first[apart], second[apart]
      low = np.minimum(roots_first[apart], roots_second[apart])
      high = np.maximum(roots_first[apart], roots_second[apart])
      np.minimum.at(parent, high, low)
      while True:
        jumped = parent[parent]
        if np.array_equal(jumped, parent):
          break
        parent = jumped
    self._parent = parent
