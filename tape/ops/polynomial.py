"""polyval: a polynomial per element, ``sum_k coeffs[k, i] * y[i]**k``, by Horner's rule in one pass.

Each element has its own coefficients (a column of ``coeffs``, degree increasing as in
``numpy.polynomial``), so a model with thousands of differently shaped polynomials (HistFactory's
code-4 interpolation) evaluates them all in one vectorized instruction. The points are ``y = x``,
or ``y = x[idx]`` with the optional attribute ``idx``: many polynomials of one variable (a
nuisance parameter) read it without a separate gather pass. The derivative in ``x`` is another
polyval with the differentiated coefficients, which fold to constants at record time.
"""
import numpy as np

from .. import math as T
from ..errors import ShapeError
from .core import defop


def _polyval_shape(graph, ids, attrs):
    c, x = graph.nodes[ids[0]], graph.nodes[ids[1]]
    n = len(attrs[0]) if attrs else (x.shape[0] if len(x.shape) == 1 else -1)
    if c.event:
        raise ShapeError("polyval: the coefficients cannot have the event axis")
    if len(c.shape) != 2 or len(x.shape) != 1 or c.shape[1] != n:
        full = ("N",) + x.shape if x.event else x.shape
        raise ShapeError(f"polyval: coefficients of shape {c.shape} do not fit x of shape {full}"
                         + (f" taken at {n} indices" if attrs else "")
                         + " (expected (degree + 1, n) and (n,))")
    if attrs and attrs[0] and (min(attrs[0]) < 0 or max(attrs[0]) >= x.shape[0]):
        raise ShapeError(f"polyval: indices outside x of shape {x.shape}")
    return (n,), x.event, ids


def _polyval_impl(coeffs, x, *at):
    coeffs = np.asarray(coeffs, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if at:
        x = x[..., np.asarray(at[0], dtype=np.int64)]
    out = np.broadcast_to(coeffs[-1], x.shape).copy()
    for k in range(coeffs.shape[0] - 2, -1, -1):
        out = out * x + coeffs[k]
    return out


def polyval(coeffs, x, at=()):
    """Record polyval (``at``: the index attribute, empty for elementwise)."""
    return T.apply("polyval", coeffs, x, attrs=at)


def _derivative(coeffs):
    """Coefficients of the derivative (degree one lower; a zero polynomial for a constant)."""
    d, n = coeffs.node.shape
    if d == 1:
        return T.apply("mul", T.gather(coeffs, tuple(range(n)), (1, n)), 0.0)
    rows = T.gather(coeffs, tuple(range(n, d * n)), (d - 1, n))
    return rows * np.arange(1.0, d)[:, None]


def _points(x, at):
    return T.gather(x, at[0], (len(at[0]),)) if at else x


def _vjp_coeffs(g, ans, coeffs, x, *at):
    d = coeffs.node.shape[0]
    g = T.broadcast_trailing(g, ans.node.shape)
    y = _points(x, at)
    terms, pw = [g], g
    for _ in range(1, d):
        pw = pw * y
        terms.append(pw)
    if any(t.event for t in terms):
        # the coefficients have no event axis: their adjoint sums over the events (here, since
        # the terms of an event x next to a summed-over g mix event and non-event arrays)
        terms = [T.apply("sum_events", t) if t.event else t * T.n_events(x) for t in terms]
    return T.stack(terms, axis=0)


def _vjp_x(g, ans, coeffs, x, *at):
    c = T.broadcast_trailing(g, ans.node.shape) * polyval(_derivative(coeffs), x, at)
    return T.scatter_add(c, at[0], x.node.shape) if at else c


def _jvp_x(t, ans, coeffs, x, *at):
    return _points(T.broadcast_trailing(t, x.node.shape), at) * polyval(_derivative(coeffs), x, at)


defop("polyval", ("polyval", None), _polyval_impl, _polyval_shape,
      (_vjp_coeffs, _vjp_x),
      (lambda t, ans, coeffs, x, *at: polyval(T.broadcast_trailing(t, coeffs.node.shape), x, at),
       _jvp_x))
