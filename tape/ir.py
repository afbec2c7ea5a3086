"""The tape IR: a flat, topologically ordered list of nodes under construction.

A node is one vectorized operation. Its ``shape`` is the *trailing* shape; ``event`` says whether a
leading event axis (length = number of events, known only at replay) comes in front of it.
Node ids are positions in ``Graph.nodes``, so creation order is a topological order.

Nodes are hash-consed on creation (common-subexpression elimination for free) and constants are
deduplicated by value; folding and algebraic simplification happen in ``tape.passes.simplify``
before a node is created.
"""
import math

import numpy as np

__all__ = ["Node", "Graph"]


class Node:
    """One instruction: ``op`` applied to the nodes ``args`` with hashable ``attrs``."""

    __slots__ = ("op", "args", "shape", "event", "attrs", "size")

    def __init__(self, op, args, shape, event, attrs):
        self.op = op
        self.args = args
        self.shape = shape
        self.event = event
        self.attrs = attrs
        self.size = math.prod(shape)   # elements per event (event nodes) or in total

    def __repr__(self):
        ev = "N," if self.event else ""
        return f"Node({self.op}, args={self.args}, shape=({ev}{','.join(map(str, self.shape))}), attrs={self.attrs})"


class Graph:
    """The instruction list of one recording, with its inputs and constants."""

    def __init__(self, n_events=None):
        self.nodes = []
        self.consts = {}        # node id -> float64 ndarray
        self._table = {}        # (op, args, attrs) -> node id: hash-consing
        self._const_ids = {}    # (shape, bytes) -> node id
        self.params = None      # node id of the parameter vector
        self.direction = None   # node id of a tangent direction (forward mode), if any
        self.n_events_id = None
        self.data = {}          # data name -> node id
        self.n_events = n_events  # record-time event count (shape reporting only)

    def __len__(self):
        return len(self.nodes)

    # -- node creation ----------------------------------------------------------------------
    def add(self, op, args, shape, event, attrs=()):
        """Return the id of the node (op, args, attrs), creating it only if it is new."""
        key = (op, args, attrs)
        nid = self._table.get(key)
        if nid is not None:
            return nid
        nid = len(self.nodes)
        self.nodes.append(Node(op, args, tuple(shape), bool(event), attrs))
        self._table[key] = nid
        return nid

    def const(self, value):
        """The id of a constant node holding `value` (deduplicated by shape and bits)."""
        arr = np.array(value, dtype=np.float64, order="C")   # keeps 0-d values 0-d
        key = (arr.shape, arr.tobytes())
        nid = self._const_ids.get(key)
        if nid is not None:
            return nid
        nid = len(self.nodes)
        arr = arr.copy()
        arr.setflags(write=False)
        self.nodes.append(Node("const", (), arr.shape, False, ()))
        self.consts[nid] = arr
        self._const_ids[key] = nid
        return nid

    def input_params(self, n):
        """Create the parameter-vector input node (shape (n,))."""
        self.params = self.add("params", (), (n,), False, ())
        return self.params

    def input_direction(self, n):
        """Create the tangent-direction input node (shape (n,)) used by forward mode."""
        if self.direction is None:
            self.direction = self.add("direction", (), (n,), False, ())
        return self.direction

    def input_data(self, name, trailing_shape):
        """Create the event-array input node for the data array `name`."""
        nid = self.add("data", (), trailing_shape, True, (name,))
        self.data[name] = nid
        return nid

    def input_n_events(self):
        """The scalar input that holds the number of events at replay time."""
        if self.n_events_id is None:
            self.n_events_id = self.add("n_events", (), (), False, ())
        return self.n_events_id

    # -- queries ------------------------------------------------------------------------------
    def is_const(self, nid):
        return nid in self.consts

    def const_value(self, nid):
        return self.consts[nid]

    def ancestors(self, roots):
        """Ids of all nodes the `roots` depend on (roots included), in increasing order."""
        seen = set()
        stack = [r for r in roots]
        nodes = self.nodes
        while stack:
            i = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            stack.extend(nodes[i].args)
        return sorted(seen)

    def dependents(self, sources, within):
        """Ids in `within` (sorted) that depend on any of `sources` (sources included)."""
        dep = set(sources)
        nodes = self.nodes
        for i in within:
            if i not in dep and any(a in dep for a in nodes[i].args):
                dep.add(i)
        return dep
