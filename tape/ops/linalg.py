"""Matrix products through BLAS dgemm (``scipy.linalg.cython_blas``).

``matmul(a, b)``: ``a`` of trailing shape (M, K) (or event rows of length K), ``b`` a
parameter-like (K, P) matrix; the product of every event row with ``b`` is one dgemm per chunk.
``tape.math.matmul`` maps numpy's 1-D conventions onto this.
"""
import numpy as np

from .. import math as T
from ..errors import ShapeError
from .core import defop


def _matmul_shape(graph, ids, attrs):
    a, b = graph.nodes[ids[0]], graph.nodes[ids[1]]
    if b.event:
        raise ShapeError("matmul: the right operand cannot have the event axis")
    if len(b.shape) != 2 or len(a.shape) not in (1, 2) or (len(a.shape) == 1 and not a.event) \
            or a.shape[-1] != b.shape[0]:
        full = ("N",) + a.shape if a.event else a.shape
        raise ShapeError(f"matmul: shapes {full} and {b.shape} do not fit")
    return a.shape[:-1] + (b.shape[1],), a.event, ids


def _vjp_b(g, ans, a, b):
    an = a.node
    g = T.broadcast_trailing(g, ans.node.shape)
    if a.event and not g.event:
        a = T.sum(a, axis=0)
        an = a.node
    if not a.event:
        a2 = T.reshape(a, (1, an.shape[0])) if len(an.shape) == 1 else a
        g2 = T.reshape(g, (1, g.node.shape[0])) if len(g.node.shape) == 1 else g
        return T.matmul(T.transpose(a2), g2)
    k, p = b.node.shape
    m = an.shape[0] if len(an.shape) == 2 else 1
    outer = T.reshape(a, (-1, m, k, 1)) * T.reshape(g, (-1, m, 1, p))
    return T.sum(outer, axis=(0, 1))


defop("matmul", ("matmul", None), np.matmul, _matmul_shape,
      (lambda g, ans, a, b: T.matmul(T.broadcast_trailing(g, ans.node.shape), T.transpose(b)), _vjp_b),
      (lambda t, ans, a, b: T.matmul(T.broadcast_trailing(t, a.node.shape), b),
       lambda t, ans, a, b: T.matmul(a, T.broadcast_trailing(t, b.node.shape))))
