"""Reductions: over the event axis (accumulated chunk by chunk, compensated) and over trailing axes.

``sum_events``/``max_events`` take an event array to a parameter-like array: they end a body pass.
``sum_last``/``max_last`` reduce the last ``m`` elements of each row (trailing axes), keeping the
event flag. ``tape.math`` builds ``sum``, ``mean``, ``amax`` and ``logsumexp`` from these.
"""
import math

import numpy as np

from .. import math as T
from ..errors import ShapeError
from .core import defop


def _events_shape(graph, ids, attrs):
    n = graph.nodes[ids[0]]
    if not n.event:
        raise ShapeError("an event-axis reduction needs an event array")
    return n.shape, False, ids


def _last_shape(graph, ids, attrs):
    m, shape = attrs
    n = graph.nodes[ids[0]]
    if math.prod(shape) * m != n.size:
        raise ShapeError(f"cannot reduce {n.shape} to {shape} over blocks of {m}")
    return shape, n.event, ids


def _back(v, x, m, shape):
    """Repeat each element of `v` (shape `shape`) m times: the layout of the reduced input `x`."""
    v = T.broadcast_trailing(v, shape)
    idx = tuple(int(i) for i in np.repeat(np.arange(math.prod(shape)), m))
    return T.gather(v, idx, x.node.shape)


def _sum_events_jvp(t, ans, x):
    t = T.broadcast_trailing(t, x.node.shape)
    if t.event:
        return T.apply("sum_events", t)
    return t * T.n_events(x)


def _max_events_jvp(t, ans, x):
    hit = T.equal(x, ans)
    return T.apply("sum_events", T.where(hit, T.broadcast_trailing(t, x.node.shape), 0.0)) \
        / T.apply("sum_events", hit)


defop("sum_events", ("sum_events", None),
      None, _events_shape,
      (lambda g, ans, x: g,),
      (_sum_events_jvp,),
      linear=True)
def _max_events_vjp(g, ans, x):
    hit = T.equal(x, ans)          # ties share the adjoint, as the tangent rule shares it
    return T.where(hit, g / T.apply("sum_events", hit), 0.0)


def _max_last_vjp(g, ans, x, m, shape):
    hit = T.equal(x, _back(ans, x, m, shape))
    count = T.apply("sum_last", hit, attrs=(m, shape))
    return T.where(hit, _back(g / count, x, m, shape), 0.0)


def _dot_shape(graph, ids, attrs):
    a, b = graph.nodes[ids[0]], graph.nodes[ids[1]]
    if not (a.event and b.event and a.shape == b.shape):
        raise ShapeError("dot_events needs two event arrays of the same shape")
    return a.shape, False, ids


# sum over events of a * b in one pass (recorded in place of sum_events(a * b) by simplify)
defop("dot_events", ("dot_events", None),
      None, _dot_shape,
      (lambda g, ans, a, b: g * b, lambda g, ans, a, b: g * a),
      (lambda t, ans, a, b: T.apply("sum_events", T.broadcast_trailing(t, a.node.shape) * b),
       lambda t, ans, a, b: T.apply("sum_events", a * T.broadcast_trailing(t, b.node.shape))),
      linear=False)
defop("max_events", ("max_events", None),
      None, _events_shape,
      (_max_events_vjp,),
      (_max_events_jvp,))
defop("sum_last", ("sum_seg", None),
      lambda x, m, shape: x.reshape(-1, m).sum(axis=1).reshape(shape), _last_shape,
      (lambda g, ans, x, m, shape: _back(g, x, m, shape),),
      (lambda t, ans, x, m, shape: T.apply("sum_last", T.broadcast_trailing(t, x.node.shape), attrs=(m, shape)),),
      linear=True)
defop("max_last", ("max_seg", None),
      lambda x, m, shape: x.reshape(-1, m).max(axis=1).reshape(shape), _last_shape,
      (_max_last_vjp,),
      (lambda t, ans, x, m, shape: (
          T.apply("sum_last", T.where(T.equal(x, _back(ans, x, m, shape)), T.broadcast_trailing(t, x.node.shape), 0.0), attrs=(m, shape))
          / T.apply("sum_last", T.equal(x, _back(ans, x, m, shape)), attrs=(m, shape))),))
