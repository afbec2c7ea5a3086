"""Sparse ops: a constant-structure sparse matrix times a vector, and products over index groups.

``spmv(values, x)``: ``out[i] = sum_k values[k] * x[cols[k]]`` for ``k`` in row ``i``'s range
``indptr[i]:indptr[i+1]`` (CSR), applied to every event row of ``x`` alike. The structure
(``indptr``, ``cols``) is fixed at record time; the values are a node, usually a constant. It
is one instruction for what would be a gather, a multiply and a scatter-add over all non-zeros,
and its derivatives are spmv's again (with the transposed structure), so gradients and Hessians
of a sparse linear map stay sparse. Binned models use it to apply every systematic's per-bin
effect at once.

``scatter_prod(x, idx, shape)``: ones of trailing ``shape`` with each ``x[j]`` multiplied into
position ``idx[j]`` (the multiplicative twin of ``scatter_add``). Its derivative rules divide by
``x``; they hold where ``x`` is non-zero.
"""
import math

import numpy as np

from .. import math as T
from ..errors import ShapeError
from .core import defop
from .structural import scatter_shape


def csr_structure(matrix):
    """(values, indptr, cols, (n_rows, n_cols)) of a scipy.sparse matrix or a dense 2-D array."""
    import scipy.sparse as sp
    m = sp.csr_array(matrix, dtype=np.float64)
    m.sum_duplicates()
    m.sort_indices()
    return (np.asarray(m.data, dtype=np.float64), tuple(m.indptr.astype(np.int64).tolist()),
            tuple(m.indices.astype(np.int64).tolist()), tuple(int(i) for i in m.shape))


def transposed(indptr, cols, n_cols):
    """Structure of the transpose: (indptr, cols, permutation of the values)."""
    indptr = np.asarray(indptr, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    rows = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    perm = np.argsort(cols, kind="stable")
    tptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=n_cols))]).astype(np.int64)
    return tuple(tptr.tolist()), tuple(rows[perm].tolist()), tuple(perm.tolist())


def _rows_of(indptr):
    indptr = np.asarray(indptr, dtype=np.int64)
    return tuple(np.repeat(np.arange(indptr.size - 1), np.diff(indptr)).tolist())


def _spmv_shape(graph, ids, attrs):
    indptr, cols, n_cols = attrs
    v, x = graph.nodes[ids[0]], graph.nodes[ids[1]]
    if v.event:
        raise ShapeError("spmv: the matrix values cannot have the event axis")
    if v.size != len(cols) or len(v.shape) != 1:
        raise ShapeError(f"spmv: {len(cols)} non-zeros but values of shape {v.shape}")
    if len(x.shape) != 1 or x.shape[0] != n_cols:
        full = ("N",) + x.shape if x.event else x.shape
        raise ShapeError(f"spmv: a matrix with {n_cols} columns cannot multiply shape {full}")
    if (indptr[0] != 0 or indptr[-1] != len(cols) or any(np.diff(indptr) < 0)
            or (cols and (max(cols) >= n_cols or min(cols) < 0))):
        raise ShapeError("spmv: inconsistent sparse structure")
    return (len(indptr) - 1,), x.event, ids


def _spmv_impl(values, x, indptr, cols, n_cols):
    import scipy.sparse as sp
    m = sp.csr_array((np.asarray(values, dtype=np.float64).ravel(), np.asarray(cols),
                      np.asarray(indptr)), shape=(len(indptr) - 1, n_cols))
    x = np.asarray(x, dtype=np.float64)
    return (m @ x.T).T if x.ndim == 2 else m @ x


def spmv_vjp_values(g, ans, values, x, indptr, cols, n_cols):
    g = T.broadcast_trailing(g, ans.node.shape)
    rows = _rows_of(indptr)
    return T.gather(g, rows, (len(rows),)) * T.gather(x, cols, (len(cols),))


def spmv_vjp_x(g, ans, values, x, indptr, cols, n_cols):
    tptr, tcols, perm = transposed(indptr, cols, n_cols)
    return spmv_raw(T.gather(values, perm, (len(perm),)), T.broadcast_trailing(g, ans.node.shape),
                    tptr, tcols, len(indptr) - 1)


def spmv_raw(values, x, indptr, cols, n_cols):
    """Record spmv with an explicit CSR structure (``indptr``, ``cols``; ``n_cols`` columns)."""
    return T.apply("spmv", values, x, attrs=(tuple(indptr), tuple(cols), int(n_cols)))


defop("spmv", ("spmv", None), _spmv_impl, _spmv_shape,
      (spmv_vjp_values, spmv_vjp_x),
      (lambda t, ans, values, x, indptr, cols, n_cols:
           spmv_raw(T.broadcast_trailing(t, values.node.shape), x, indptr, cols, n_cols),
       lambda t, ans, values, x, indptr, cols, n_cols:
           spmv_raw(values, T.broadcast_trailing(t, x.node.shape), indptr, cols, n_cols)))


# ---------------------------------------------------------------------------------------------
def scatter_prod_impl(x, idx, shape):
    """numpy reference: `x` of shape (..., len(idx)) multiplied into ones of shape (..., *shape)."""
    x = np.asarray(x, dtype=np.float64)
    lead = x.shape[:-1] if x.ndim else ()
    out = np.ones(lead + (math.prod(shape),))
    np.multiply.at(out, (Ellipsis, np.asarray(idx, dtype=np.int64)), x.reshape(lead + (-1,)))
    return out.reshape(lead + tuple(shape))


defop("scatter_prod", ("scatter_prod", None), scatter_prod_impl, scatter_shape,
      (lambda g, ans, x, idx, shape:
           T.gather(T.broadcast_trailing(g, shape) * ans, idx, x.node.shape) / x,),
      (lambda t, ans, x, idx, shape:
           ans * T.scatter_add(T.broadcast_trailing(t, x.node.shape) / x, idx, shape),))
