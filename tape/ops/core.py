"""The op registry and the single entry point that records an op on a graph.

An ``Op`` bundles everything about one primitive in one place: the replay kernel it lowers to,
a numpy reference (constant folding, slow reference), its shape rule, and its derivative rules:
``vjp`` (reverse, one rule per argument, autograd's ``defvjp`` style) and ``jvp`` (tangent, one
rule per argument). Rules are written with traced operations, so the derivative of a recorded tape
is itself a recorded tape: the same passes optimize it and the same interpreter replays it, and
applying ``jvp`` to a gradient tape gives forward-over-reverse Hessians.
"""
import math

import numpy as np

from ..errors import ShapeError
from ..passes import simplify
from ..tracer import Tracer

__all__ = ["Op", "OPS", "defop", "PerArg", "apply", "elementwise_shape"]

OPS = {}


class Op:
    """A primitive: kernel, numpy reference, shape rule and derivative rules side by side.

    Parameters
    ----------
    name : str
        Name of the op in the IR.
    kernel : tuple or None
        ``(kind, fn)`` naming the replay kernel (see ``tape._replay.KINDS``); ``None`` for
        inputs and aliases that need no instruction.
    impl : callable
        numpy reference ``impl(*arrays, *attrs)``, used for constant folding and tests.
    shape : callable
        ``shape(graph, args, attrs) -> (shape, event, args)``; may rewrite args (broadcasts).
    vjp, jvp : tuple of callables or None
        Per-argument rules ``vjp_k(g, ans, *args, *attrs)`` and ``jvp_k(t, ans, *args, *attrs)``
        with Tracer arguments; ``None`` for an argument that has no derivative.
    """

    __slots__ = ("name", "kernel", "impl", "shape", "vjp", "jvp", "linear")

    def __init__(self, name, kernel, impl, shape, vjp=None, jvp=None, linear=False):
        self.name = name
        self.kernel = kernel
        self.impl = impl
        self.shape = shape
        self.vjp = vjp
        self.jvp = jvp
        self.linear = linear

    def __repr__(self):
        return f"Op({self.name})"


class PerArg:
    """Derivative rules of an op with any number of arguments: ``rules[k]`` is ``make(k)``."""

    def __init__(self, make):
        self.make = make

    def __getitem__(self, k):
        return self.make(k)


def defop(name, kernel, impl, shape, vjp=None, jvp=None, linear=False):
    """Register an op; returns the Op. See ``Op`` for the arguments."""
    if name in OPS:
        raise ValueError(f"op {name!r} defined twice")
    op = Op(name, kernel, impl, shape, vjp, jvp, linear)
    OPS[name] = op
    return op


def _graph_of(args):
    for a in args:
        if isinstance(a, Tracer):
            return a.graph
    raise TypeError("apply() needs at least one traced argument")


def as_node(graph, x):
    """Node id of a Tracer or of a constant (numpy value) on `graph`."""
    if isinstance(x, Tracer):
        if x.graph is not graph:
            raise ValueError("cannot mix values traced in two different recordings")
        return x.id
    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"cannot record a constant of type {type(x).__name__}")
    return graph.const(arr.astype(np.float64))


def apply(name, *args, attrs=()):
    """Record op `name` on traced/constant `args`; returns a Tracer (folded if constant)."""
    graph = _graph_of(args)
    ids = tuple(as_node(graph, a) for a in args)
    return Tracer(graph, apply_ids(graph, name, ids, attrs))


def apply_ids(graph, name, ids, attrs=()):
    """As ``apply`` on node ids; returns the node id."""
    op = OPS[name]
    shape, event, ids = op.shape(graph, ids, attrs)
    nodes = graph.nodes
    if op.impl is not None and all(i in graph.consts for i in ids):
        val = op.impl(*[graph.consts[i] for i in ids], *attrs)
        return graph.const(np.broadcast_to(np.asarray(val, dtype=np.float64), shape))
    sid = simplify.simplify(graph, name, ids, attrs, shape, event)
    if sid is not None:
        return sid
    return graph.add(name, ids, shape, event, attrs)


# ---------------------------------------------------------------------------------------------
# Shape rules shared by several op families.
def elementwise_shape(graph, ids, attrs):
    """numpy broadcasting with an event axis in front: returns (shape, event, ids).

    Event operands must share their number of trailing dimensions (as numpy aligns shapes from
    the right). Operands are left as they are when the replay can broadcast them itself
    (a scalar, or a non-event array of the output's trailing shape against event rows);
    otherwise an explicit broadcast (a gather) is recorded in front of the op.
    """
    nodes = graph.nodes
    event = any(nodes[i].event for i in ids)
    if event:
        dims = {len(nodes[i].shape) for i in ids if nodes[i].event}
        if len(dims) > 1:
            raise ShapeError(
                "event arrays with different numbers of dimensions cannot be broadcast "
                f"together: shapes {[('N',) + nodes[i].shape for i in ids if nodes[i].event]}")
        d = dims.pop()
        trailing = []
        for i in ids:
            s = nodes[i].shape
            if not nodes[i].event and len(s) > d:
                if len(s) == d + 1 and s[0] == 1:
                    s = s[1:]
                else:
                    raise ShapeError(
                        f"a constant or parameter array of shape {s} cannot be broadcast against "
                        "an event array: its leading axis would meet the event axis")
            trailing.append(s)
    else:
        trailing = [nodes[i].shape for i in ids]
    try:
        shape = tuple(np.broadcast_shapes(*trailing))
    except ValueError as e:
        full = [("N",) + nodes[i].shape if nodes[i].event else nodes[i].shape for i in ids]
        raise ShapeError(f"operands could not be broadcast together with shapes {full}") from e
    size = math.prod(shape)
    out = []
    for i, s in zip(ids, trailing):
        n = nodes[i]
        if n.event:
            ok = s == shape
        else:
            ok = n.size == 1 or (1,) * (len(shape) - len(s)) + tuple(s) == shape
        out.append(i if ok else broadcast_to_ids(graph, i, shape))
    return shape, event, tuple(out)


def broadcast_to_ids(graph, nid, shape):
    """Materialize node `nid` broadcast to trailing `shape` (keeps its event flag)."""
    n = graph.nodes[nid]
    s = n.shape
    if len(s) > len(shape):
        s = s[len(s) - len(shape):]
    src = np.arange(n.size, dtype=np.int64).reshape(s)
    idx = np.broadcast_to(src, shape).ravel()
    return apply_ids(graph, "gather", (nid,), (tuple(idx.tolist()), tuple(shape)))
