"""The structural sparsity of a recorded function's Hessian, and the column groups that let a few
Hessian-vector products recover it (binned likelihoods: most nuisance parameters act on a few bins).

The pattern comes from the tape, not from numbers at a point, so it holds at every point: by the
second-order chain rule, the Hessian is a sum over the tape's ops of (adjoint) x (the op's second
derivative in its inputs) x (Jacobians of those inputs), so entry (i, j) can only be non-zero if
some op has a non-zero second derivative in two input elements, one depending on parameter i and
the other on j (Griewank and Walther, *Evaluating Derivatives*, ch. 7). Each element's set of
parameters is propagated forwards as a row of a sparse boolean matrix; an op without a rule here
makes the pattern unknown (``None``: the dense Hessian is computed instead).

The columns are then grouped so that no row has a non-zero in two columns of a group: one
Hessian-vector product per group gives all of its columns. Rows that touch most columns (a signal
strength, a luminosity) would put every column in a group of its own, so the densest columns are
computed directly, one product each, and their rows are taken from them by symmetry.
"""
import numpy as np
import scipy.sparse as sp

__all__ = ["hessian_pattern", "column_groups", "SparseHessian"]

# Element-wise ops by the shape of their second derivative in their inputs: none (linear or
# piecewise linear, such as a selection), or a non-zero second derivative in one input (unary),
# between the two inputs (bilinear), or anywhere (every pair of inputs).
_LINEAR = {"add", "sub", "neg", "abs", "maximum", "minimum"}
_UNARY = {"exp", "log", "log1p", "expm1", "sqrt", "square", "reciprocal", "sin", "cos",
          "arctan", "tanh", "sigmoid", "erf", "erfc", "log_ndtr", "lgamma", "digamma",
          "polygamma"}
_ALL_PAIRS = {"pow", "logaddexp", "floor_log", "floor_recip", "div"}
_NO_DERIVATIVE = {"sign", "gt", "ge", "lt", "le", "eq", "ne", "stop_gradient"}
_INPUTS = {"const", "data", "n_events", "direction"}
# larger structures than this (elements times parameters) are not analysed
MAX_ENTRIES = 5_000_000
# the analysis gives up (the Hessian is then computed densely) once the pattern is this full, or
# once it has visited this many times n^2 pairs of parameters
MAX_DENSITY = 0.9
MAX_WORK = 50


def _one(m):
    """m with every stored entry set to 1 (a union of patterns, not a sum)."""
    m = sp.csr_matrix(m)
    m.data[:] = 1.0
    return m


def _rows(d, idx):
    return d[np.asarray(idx, dtype=np.int64)]


def _group(out_of, n_out, n_in):
    """The (n_out, n_in) 0/1 matrix with a one at (out_of[i], i): unions over groups of rows."""
    out_of = np.asarray(out_of, dtype=np.int64)
    return sp.csr_matrix((np.ones(n_in), (out_of, np.arange(n_in))), shape=(n_out, n_in))


def hessian_pattern(graph, out, n_params):
    """The structural non-zero pattern of the Hessian of node `out` with respect to the parameter
    vector, as a symmetric (n, n) boolean numpy array, or None where the tape has an op this
    analysis does not know (or is too large to analyse).

    >>> import numpy as np, tape
    >>> f = tape.record(lambda p: p[0] * p[1] + np.exp(p[2]) + 3.0 * p[3], np.ones(4))
    >>> hessian_pattern(f._graph, f._out, 4).astype(int)
    array([[0, 1, 0, 0],
           [1, 0, 0, 0],
           [0, 0, 1, 0],
           [0, 0, 0, 0]])
    """
    nodes = graph.nodes
    live = graph.ancestors([out])
    if sum(nodes[i].size for i in live) * max(1, n_params) > MAX_ENTRIES * 64:
        return None
    dep = {}
    h = np.zeros((n_params, n_params), dtype=bool)     # the pattern so far (upper or lower)
    work = [0, n_params * n_params]                  # pairs visited, next density check

    class _Dense(Exception):
        pass

    def cross(a, b):
        # second derivatives between the elements of a and those of b, row by row (the
        # pattern is made symmetric at the end)
        if a.nnz and b.nnz:
            c = (a.T @ b).tocoo()
            h[c.row, c.col] = True
            work[0] += c.nnz
            # a pattern that is nearly full saves no products: stop early (and bound the work
            # of tapes with many ops on many parameters)
            if work[0] > MAX_WORK * n_params * n_params:
                raise _Dense
            if work[0] > work[1]:
                work[1] += n_params * n_params
                if (h | h.T).mean() > MAX_DENSITY:
                    raise _Dense

    try:
        return _propagate(nodes, live, dep, cross, h, n_params)
    except _Dense:
        return None


def _propagate(nodes, live, dep, cross, h, n_params):
    for i in live:
        node = nodes[i]
        op, args, size = node.op, node.args, node.size
        if op == "params":
            dep[i] = sp.identity(n_params, format="csr")
            continue
        if op in _INPUTS or op in _NO_DERIVATIVE:
            dep[i] = sp.csr_matrix((size, n_params))
            continue
        ins = [dep[a] for a in args]
        if op in ("reshape", "sum_events", "max_events"):
            dep[i] = ins[0]
            continue
        if op in _LINEAR or op in _UNARY or op in _ALL_PAIRS or op in ("mul", "muladd", "where"):
            # element-wise: each operand is full size or a broadcast scalar
            full = []
            for d in ins:
                if d.shape[0] == size:
                    full.append(d)
                elif d.shape[0] == 1:
                    full.append(_rows(d, np.zeros(size, dtype=np.int64)))
                else:
                    return None
            if op == "where":
                full = full[1:]                  # the condition has no derivative
            elif op in _UNARY:
                full = full[:1]                  # (polygamma's order is an attribute)
            elif op in ("mul", "muladd"):
                cross(full[0], full[1])
            total = _one(sum(full[1:], full[0]))
            if op in _UNARY or op in _ALL_PAIRS:
                cross(total, total)
            dep[i] = total
            continue
        if op == "dot_events":
            a, b = ins
            if a.shape != b.shape:
                return None
            cross(a, b)
            dep[i] = _one(a + b)
            continue
        if op == "gather":
            dep[i] = _rows(ins[0], node.attrs[0])
            continue
        if op == "scatter_add":
            dep[i] = _one(_group(node.attrs[0], size, ins[0].shape[0]) @ ins[0])
            continue
        if op == "concat":
            dep[i] = sp.vstack(ins, format="csr")
            continue
        if op in ("sum_last", "max_last"):
            m = node.attrs[0]
            dep[i] = _one(_group(np.arange(ins[0].shape[0]) // m, size, ins[0].shape[0]) @ ins[0])
            continue
        if op == "scatter_prod":
            total = _one(_group(node.attrs[0], size, ins[0].shape[0]) @ ins[0])
            cross(total, total)      # products of the members of each group
            dep[i] = total
            continue
        if op == "spmv":
            indptr, cols, _ = node.attrs
            values, x = ins
            xq = _rows(x, cols)                  # the element of x each non-zero multiplies
            cross(values, xq)
            rows = np.repeat(np.arange(len(indptr) - 1), np.diff(np.asarray(indptr)))
            dep[i] = _one(_group(rows, size, len(cols)) @ (values + xq))
            continue
        if op == "polyval":
            coeffs, x = ins
            d, n = nodes[args[0]].shape
            y = _rows(x, node.attrs[0]) if node.attrs else x
            if y.shape[0] != n:
                return None
            total = y
            for k in range(d):
                ck = coeffs[k * n:(k + 1) * n]
                if k >= 1:
                    cross(ck, y)
                total = total + ck
            if d >= 3:
                cross(y, y)
            dep[i] = _one(total)
            continue
        if op == "matmul":
            a_node, b_node = nodes[args[0]], nodes[args[1]]
            k, p = b_node.shape
            m = a_node.shape[0] if len(a_node.shape) == 2 else 1
            if m * k * p > MAX_ENTRIES:
                return None
            ii, jj, kk = np.meshgrid(np.arange(m), np.arange(p), np.arange(k), indexing="ij")
            ar = _rows(ins[0], (ii * k + kk).ravel())
            br = _rows(ins[1], (kk * p + jj).ravel())
            cross(ar, br)
            dep[i] = _one(_group((ii * p + jj).ravel(), size, m * p * k) @ (ar + br))
            continue
        return None
    return h | h.T


def _colour(pattern, rows_used):
    """Greedy groups of the columns of `pattern` such that no row in `rows_used` (a boolean mask)
    has a non-zero in two columns of one group; columns by decreasing count of such rows."""
    n_rows, n_cols = pattern.shape
    p = pattern & rows_used[:, None]
    order = np.argsort(-p.sum(axis=0), kind="stable")
    used = np.zeros((n_rows, max(n_cols, 1)), dtype=bool)   # used[row, group]
    groups = []
    for j in order:
        rows = np.flatnonzero(p[:, j])
        k = len(groups)
        free = np.flatnonzero(~used[rows, :k].any(axis=0)) if rows.size else np.arange(k)
        if free.size:
            g = int(free[0])
        else:
            g = k
            groups.append([])
        groups[g].append(int(j))
        used[rows, g] = True
    return groups


def column_groups(pattern):
    """(direct, groups): the columns computed one product each (the densest), and groups of the
    other columns whose rows outside `direct` never share a non-zero within a group. The number
    of products, ``len(direct) + len(groups)``, is the smallest over a few choices of `direct`.

    >>> pattern = np.eye(5, dtype=bool); pattern[0, :] = pattern[:, 0] = True
    >>> column_groups(pattern)
    ([0], [[1, 2, 3, 4]])
    """
    n = pattern.shape[0]
    if n == 0:
        return [], []
    degree = pattern.sum(axis=1)
    by_degree = np.argsort(-degree, kind="stable")
    # how many of the densest columns to compute directly: a grid of fractions of n, then the
    # neighbours of the best (the cost, direct columns plus groups, falls steeply while the
    # rows of parameters that touch every bin are in the groups, then rises slowly)
    fractions = (1 / 64, 1 / 32, 1 / 16, 3 / 32, 1 / 8, 3 / 16, 1 / 4, 3 / 8, 1 / 2)
    candidates = sorted({0, *(int(round(n * q)) for q in fractions)})
    tried = {}

    def cost(k):
        if k not in tried:
            direct = sorted(int(i) for i in by_degree[:k])
            others = np.ones(n, dtype=bool)
            others[direct] = False
            groups = _colour(pattern[:, others], others.copy())
            index = np.flatnonzero(others)
            tried[k] = (direct, [[int(index[j]) for j in g] for g in groups])
        direct, groups = tried[k]
        return len(direct) + len(groups)

    best = 0
    for k in candidates:
        if k >= cost(best):
            break                # k direct columns alone cost more than the best so far
        if cost(k) < cost(best):
            best = k
    step = max(1, n // 64)
    for k in (best - step, best + step):
        if 0 <= k < n:
            cost(k)
    return tried[min(tried, key=lambda k: (cost(k), k))]


class SparseHessian:
    """A Hessian from Hessian-vector products over groups of columns (see ``column_groups``):
    the pattern, the products' seeds, and where each product's rows go."""

    def __init__(self, pattern, direct, groups):
        n = pattern.shape[0]
        self.n, self.direct, self.groups = n, np.asarray(direct, dtype=np.int64), groups
        self.products = len(direct) + len(groups)
        grouped_rows = pattern.copy()
        grouped_rows[self.direct, :] = False
        # (rows, columns) of product g's entries: row i of the product is entry (i, j) for the
        # one column j of the group with a non-zero in row i (outside the direct rows)
        self._scatter = []
        for g in groups:
            rows, k = np.nonzero(grouped_rows[:, g])
            self._scatter.append((np.asarray(g, dtype=np.int64), rows, np.asarray(g)[k]))

    @classmethod
    def of(cls, graph, out, n):
        """The plan for node `out` of `graph` (n parameters), or None if its pattern is unknown."""
        pattern = hessian_pattern(graph, out, n)
        if pattern is None:
            return None
        return cls(pattern, *column_groups(pattern))

    def hessian(self, prog, p):
        """The Hessian at p from ``prog``, an ``hvp`` program (input: p, then the direction)."""
        n = self.n
        h = np.zeros((n, n))
        x = np.concatenate([p, np.zeros(n)])
        y = np.empty(n)
        for j in self.direct:
            x[n + j] = 1.0
            prog.run(x, y)
            x[n + j] = 0.0
            h[:, j] = y
        for seed, rows, cols in self._scatter:
            x[n + seed] = 1.0
            prog.run(x, y)
            x[n + seed] = 0.0
            h[rows, cols] = y[rows]
        # the direct columns' rows, by symmetry
        h[self.direct, :] = h[:, self.direct].T
        return h
