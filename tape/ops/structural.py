"""Structural ops: gather (indexing, broadcasting, transposes), scatter-add, concat, reshape,
stop_gradient.

Indices are fixed at record time and refer to the flattened trailing shape, applied to every event
row alike. ``reshape`` and ``stop_gradient`` are aliases: they share their input's buffer and
emit no instruction.
"""
import builtins
import math

import numpy as np

from .. import math as T
from ..errors import ShapeError
from .core import PerArg, defop


def _gather_shape(graph, ids, attrs):
    idx, shape = attrs
    n = graph.nodes[ids[0]]
    if len(idx) != math.prod(shape) or (idx and (max(idx) >= n.size or min(idx) < 0)):
        raise ShapeError("gather indices do not fit the operand")
    return shape, n.event, ids


def scatter_shape(graph, ids, attrs):
    """Shape rule of the scatters (add, prod): one index per element of x, inside `shape`."""
    idx, shape = attrs
    n = graph.nodes[ids[0]]
    if len(idx) != n.size or (idx and (max(idx) >= math.prod(shape) or min(idx) < 0)):
        raise ShapeError("scatter indices do not fit the operand")
    return shape, n.event, ids


def _reshape_shape(graph, ids, attrs):
    (shape,) = attrs
    n = graph.nodes[ids[0]]
    if math.prod(shape) != n.size:
        raise ShapeError(f"cannot reshape {n.shape} to {shape}")
    return shape, n.event, ids


def _same_shape(graph, ids, attrs):
    n = graph.nodes[ids[0]]
    return n.shape, n.event, ids


def _gather_impl(x, idx, shape):
    return np.asarray(x).ravel()[np.asarray(idx, dtype=np.int64)].reshape(shape)


def _scatter_impl(x, idx, shape):
    out = np.zeros(math.prod(shape))
    np.add.at(out, np.asarray(idx, dtype=np.int64), np.asarray(x).ravel())
    return out.reshape(shape)


defop("gather", ("gather", None), _gather_impl, _gather_shape,
      (lambda g, ans, x, idx, shape: T.scatter_add(T.broadcast_trailing(g, shape), idx, x.node.shape),),
      (lambda t, ans, x, idx, shape: T.gather(T.broadcast_trailing(t, x.node.shape), idx, shape),),
      linear=True)
defop("scatter_add", ("scatter_add", None), _scatter_impl, scatter_shape,
      (lambda g, ans, x, idx, shape: T.gather(T.broadcast_trailing(g, shape), idx, x.node.shape),),
      (lambda t, ans, x, idx, shape: T.scatter_add(T.broadcast_trailing(t, x.node.shape), idx, shape),),
      linear=True)
def _concat_shape(graph, ids, attrs):
    ns = [graph.nodes[i] for i in ids]
    if any(len(n.shape) != 1 for n in ns) or len({n.event for n in ns}) != 1:
        raise ShapeError("concat joins 1-D arrays that all have, or all lack, the event axis")
    return (builtins.sum(n.size for n in ns),), ns[0].event, ids


def _concat_offsets(args):
    return np.cumsum([0] + [a.node.size for a in args])


def _concat_vjp(k):
    def rule(g, ans, *args):
        off = _concat_offsets(args)
        return T.gather(T.broadcast_trailing(g, ans.node.shape), range(off[k], off[k + 1]),
                        args[k].node.shape)
    return rule


def _concat_jvp(k):
    def rule(t, ans, *args):
        off = _concat_offsets(args)
        return T.scatter_add(T.broadcast_trailing(t, args[k].node.shape), range(off[k], off[k + 1]),
                             ans.node.shape)
    return rule


defop("concat", ("concat", None), lambda *xs: np.concatenate([np.ravel(x) for x in xs]),
      _concat_shape, PerArg(_concat_vjp), PerArg(_concat_jvp), linear=True)
defop("reshape", None, lambda x, shape: np.reshape(x, shape), _reshape_shape,
      (lambda g, ans, x, shape: T.apply("reshape", T.broadcast_trailing(g, shape), attrs=(x.node.shape,)),),
      (lambda t, ans, x, shape: T.apply("reshape", T.broadcast_trailing(t, x.node.shape), attrs=(shape,)),),
      linear=True)
defop("stop_gradient", None, lambda x: x, _same_shape, (None,), (None,))
