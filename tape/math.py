"""The ``tape.*`` math namespace: numpy-like functions that record on traced values.

What to use when
----------------
- Plain numpy (``np.exp``, ``np.sum``, ``np.where``, ``x @ w``) records unchanged on tracers; use
  it when the same code should also run on plain arrays.
- ``tape.erf``, ``tape.lgamma``, ``tape.logsumexp``, ``tape.sigmoid``, ``tape.softplus`` cover
  functions numpy lacks (``scipy.special`` ufuncs such as ``erf`` and ``gammaln`` work too).
- ``tape.where(cond, a, b)`` replaces Python ``if`` on traced values; both branches are recorded.

Every function here also accepts plain numbers and arrays and then simply computes the result, so
a likelihood written with ``tape.*`` runs with or without recording.

>>> import numpy as np, tape
>>> float(tape.logsumexp(np.array([0.0, 0.0])))  # doctest: +ELLIPSIS
0.693147...
"""
import builtins
import math as _math

import numpy as np
from scipy import special as _special

from .errors import ShapeError, TracingError
from .tracer import Tracer

_LN2 = _math.log(2.0)
_LN10 = _math.log(10.0)


def _traced(*xs):
    return any(isinstance(x, Tracer) for x in xs)


def apply(name, *args, attrs=()):
    """Record op `name` (see ``tape.ops.OPS``) on `args`; at least one must be traced."""
    from .ops.core import apply as _apply
    return _apply(name, *args, attrs=attrs)


def _graph_of(*xs):
    for x in xs:
        if isinstance(x, Tracer):
            return x.graph
    return None


def _as_tracer(x, graph):
    if isinstance(x, Tracer):
        return x
    from .ops.core import as_node
    return Tracer(graph, as_node(graph, x))


# ---------------------------------------------------------------------------------------------
# Elementwise functions.
def _unary(name, ref, doc):
    def f(x):
        if isinstance(x, Tracer):
            return apply(name, x)
        return ref(x)
    f.__name__ = name
    f.__doc__ = doc
    return f


def _binary(name, ref, doc):
    def f(a, b):
        if _traced(a, b):
            return apply(name, a, b)
        return ref(a, b)
    f.__name__ = name
    f.__doc__ = doc
    return f


negative = _unary("neg", np.negative, "Elementwise -x.")
exp = _unary("exp", np.exp, "Elementwise exponential.")
log = _unary("log", np.log, "Elementwise natural logarithm.")
log1p = _unary("log1p", np.log1p, "log(1 + x), accurate for small x.")
expm1 = _unary("expm1", np.expm1, "exp(x) - 1, accurate for small x.")
sqrt = _unary("sqrt", np.sqrt, "Elementwise square root.")
square = _unary("square", np.square, "Elementwise x**2.")
reciprocal = _unary("reciprocal", np.reciprocal, "Elementwise 1/x.")
abs = _unary("abs", np.abs, "Elementwise |x| (derivative sign(x)).")
sign = _unary("sign", np.sign, "Elementwise sign (zero derivative).")
sin = _unary("sin", np.sin, "Elementwise sine.")
cos = _unary("cos", np.cos, "Elementwise cosine.")
tanh = _unary("tanh", np.tanh, "Elementwise hyperbolic tangent.")
arctan = _unary("arctan", np.arctan, "Elementwise inverse tangent.")
sigmoid = _unary("sigmoid", _special.expit, "The logistic function 1/(1 + exp(-x)), overflow-free.")
erf = _unary("erf", _special.erf, "The error function.")
erfc = _unary("erfc", _special.erfc, "The complementary error function 1 - erf(x), accurate in the tail.")
log_ndtr = _unary("log_ndtr", _special.log_ndtr,
                  "log of the standard normal CDF, accurate far into the lower tail (scipy's).")
lgamma = _unary("lgamma", _special.gammaln, "log|Gamma(x)|.")
digamma = _unary("digamma", _special.psi, "The digamma function, d lgamma/dx.")
def polygamma(n, x):
    """The n-th derivative of digamma, psi^(n)(x), for an integer n >= 1."""
    n = int(n)
    if n < 1:
        raise ValueError(f"polygamma order must be >= 1 (use digamma for 0), got {n}")
    if isinstance(x, Tracer):
        return apply("polygamma", x, attrs=(n,))
    return _special.polygamma(n, x)


def trigamma(x):
    """The trigamma function psi^(1)(x)."""
    return polygamma(1, x)

add = _binary("add", np.add, "Elementwise a + b with numpy broadcasting.")
subtract = _binary("sub", np.subtract, "Elementwise a - b.")
multiply = _binary("mul", np.multiply, "Elementwise a * b.")
divide = _binary("div", np.divide, "Elementwise a / b.")
power = _binary("pow", np.power, "Elementwise a ** b.")
maximum = _binary("maximum", np.maximum, "Elementwise maximum (NaN propagates).")
minimum = _binary("minimum", np.minimum, "Elementwise minimum (NaN propagates).")
logaddexp = _binary("logaddexp", np.logaddexp, "log(exp(a) + exp(b)) without overflow.")
# (the models' floored log density: np.log(np.maximum(a, 1e-300)) records as floor_log itself)
floor_log = _binary("floor_log", lambda a, b: np.log(np.maximum(a, b)),
                    "log(max(a, b)): a log floored at b (derivative in a: floor_recip).")
floor_recip = _binary("floor_recip", lambda a, b: np.where(np.asarray(a) >= b, 1.0 / np.asarray(a), 0.0),
                      "1/a where a >= b, else 0: the derivative of floor_log(a, b) in a.")
greater = _binary("gt", np.greater, "a > b as 1.0/0.0 (no derivative).")
greater_equal = _binary("ge", np.greater_equal, "a >= b as 1.0/0.0.")
less = _binary("lt", np.less, "a < b as 1.0/0.0.")
less_equal = _binary("le", np.less_equal, "a <= b as 1.0/0.0.")
equal = _binary("eq", np.equal, "a == b as 1.0/0.0.")
not_equal = _binary("ne", np.not_equal, "a != b as 1.0/0.0.")


def where(condition, a, b):
    """Elementwise ``a`` where ``condition`` is nonzero, else ``b``; both branches are recorded.

    The derivative flows only into the branch taken. A branch that is NaN or infinite where it is
    not taken still poisons the gradient through its own derivative (e.g. ``log`` at 0): guard its
    input with a second ``where`` (the double-where pattern).

    >>> import numpy as np, tape
    >>> tape.where(np.array([1.0, 0.0]), 2.0, 3.0)
    array([2., 3.])
    """
    if _traced(condition, a, b):
        return apply("where", condition, a, b)
    return np.where(np.asarray(condition) != 0, a, b)


def clip(x, lo=None, hi=None, **kwargs):
    """Clip `x` to [lo, hi] (either may be None); derivative 0 outside."""
    lo = kwargs.pop("a_min", lo) if lo is None else lo
    hi = kwargs.pop("a_max", hi) if hi is None else hi
    if not _traced(x, lo, hi):
        return np.clip(x, lo, hi)
    if lo is not None:
        x = maximum(x, lo)
    if hi is not None:
        x = minimum(x, hi)
    return x


def softplus(x):
    """log(1 + exp(x)) without overflow."""
    return logaddexp(0.0, x)


def xlogy(x, y):
    """x * log(y), 0 where x == 0 (with a zero derivative there too)."""
    if not _traced(x, y):
        return _special.xlogy(x, y)
    return x * log(where(equal(x, 0.0), 1.0, y))


def ndtr(x):
    """The standard normal CDF, through erfc so that the lower tail keeps its precision."""
    return 0.5 * erfc(x * (-1.0 / _math.sqrt(2.0)))


def exp2(x):
    return exp(x * _LN2)


def log2(x):
    return log(x) * (1.0 / _LN2)


def log10(x):
    return log(x) * (1.0 / _LN10)


def sinh(x):
    return 0.5 * (exp(x) - exp(-x))


def cosh(x):
    return 0.5 * (exp(x) + exp(-x))


def stop_gradient(x):
    """`x` with no derivative flowing through it."""
    if isinstance(x, Tracer):
        return apply("stop_gradient", x)
    return x


def isfinite_mask(x):
    """1.0 where x is finite, else 0.0 (a traced-friendly np.isfinite)."""
    if isinstance(x, Tracer):
        return less(abs(x), np.inf)
    return np.isfinite(x).astype(np.float64)


# ---------------------------------------------------------------------------------------------
# Shapes and structure.
def n_events(x):
    """The number of events of the data `x` is computed from, at replay time (a traced scalar)."""
    if isinstance(x, Tracer):
        return Tracer(x.graph, x.graph.input_n_events())
    return float(np.shape(x)[0])


def broadcast_trailing(x, shape):
    """Broadcast the trailing (non-event) shape of traced `x` to `shape`, keeping its event flag."""
    shape = tuple(shape)
    n = x.node
    if n.shape == shape:
        return x
    from .ops.core import broadcast_to_ids
    return Tracer(x.graph, broadcast_to_ids(x.graph, x.id, shape))


def index_tuple(idx):
    """Indices as the tuple of Python ints an op attribute holds (hashable, JSON-ready)."""
    if type(idx) is tuple and (not idx or set(map(type, idx)) == {int}):
        return idx
    if isinstance(idx, np.ndarray):
        return tuple(idx.astype(np.int64, copy=False).ravel().tolist())
    return tuple(int(i) for i in idx)


def gather(x, idx, shape):
    """Elements `idx` (into the flattened trailing shape) of `x`, as trailing `shape`."""
    return apply("gather", x, attrs=(index_tuple(idx), tuple(shape)))


def scatter_add(x, idx, shape):
    """A zero array of trailing `shape` with the elements of `x` added at positions `idx`."""
    return apply("scatter_add", x, attrs=(index_tuple(idx), tuple(shape)))


def scatter_prod(x, idx, shape):
    """An array of ones of trailing `shape` with the elements of `x` multiplied in at `idx`.

    The multiplicative twin of ``scatter_add``; derivatives divide by `x` (defined where it is
    non-zero).

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.scatter_prod(np.array([2.0, 3.0, 4.0]), [0, 1, 0], (2,))
    array([8., 3.])
    """
    if not _traced(x):
        from .ops.sparse import scatter_prod_impl
        return scatter_prod_impl(x, idx, shape)
    return apply("scatter_prod", x, attrs=(index_tuple(idx), tuple(shape)))


def polyval(coeffs, x, at=None):
    """Per-element polynomials: ``sum_k coeffs[k, i] * y[..., i] ** k`` (Horner, one pass), at
    ``y = x``, or at ``y = x[..., at]`` (many polynomials of a few variables, no gather pass).

    Parameters
    ----------
    coeffs : array or traced, shape (degree + 1, n), increasing degree
    x : array or traced, trailing shape (n,), or any length when `at` is given
    at : sequence of int, optional, length n

    Examples
    --------
    >>> import numpy as np, tape
    >>> tape.polyval(np.array([[1.0, 0.0], [2.0, 1.0], [0.0, 3.0]]), np.array([2.0, 2.0]))
    array([ 5., 14.])
    >>> tape.polyval(np.array([[1.0, 0.0], [2.0, 1.0]]), np.array([3.0, 5.0]), at=[1, 1])
    array([11.,  5.])
    """
    attrs = () if at is None else (index_tuple(at),)
    if not _traced(coeffs, x):
        from .ops.polynomial import _polyval_impl
        return _polyval_impl(coeffs, x, *attrs)
    return apply("polyval", coeffs, x, attrs=attrs)


def spmv(matrix, x):
    """A constant sparse matrix times the trailing vector of `x` (of every event row).

    Parameters
    ----------
    matrix : scipy.sparse array or matrix, or a dense 2-D array
        Its non-zero pattern is fixed at record time; derivatives stay sparse.
    x : traced or array, trailing shape (n_cols,)

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, tape
    >>> a = sp.csr_array(([2.0, 3.0], [1, 0], [0, 1, 2]), shape=(2, 2))
    >>> f = tape.record(lambda p: tape.sum(tape.spmv(a, p) ** 2), np.ones(2))
    >>> f.grad(np.array([1.0, 2.0]))      # d/dp of (2 p1)^2 + (3 p0)^2
    array([18., 16.])
    """
    from .ops.sparse import csr_structure
    values, indptr, cols, (_, n_cols) = csr_structure(matrix)
    if not _traced(x):
        import scipy.sparse as sp
        m = sp.csr_array((values, cols, indptr), shape=(len(indptr) - 1, n_cols))
        x = np.asarray(x, dtype=np.float64)
        return (m @ x.T).T if x.ndim == 2 else m @ x
    return apply("spmv", values, x, attrs=(indptr, cols, n_cols))


def _trailing_template(x):
    return np.arange(x.node.size, dtype=np.int64).reshape(x.node.shape)


def _from_template(x, sub):
    """Gather the trailing index array `sub` from traced `x` (identity and reshapes are free)."""
    sub = np.asarray(sub)
    flat = sub.ravel()
    if flat.size == x.node.size and np.array_equal(flat, np.arange(flat.size)):
        return reshape_trailing(x, sub.shape)
    return gather(x, flat, sub.shape)


def reshape_trailing(x, shape):
    shape = tuple(int(s) for s in shape)
    if shape == x.node.shape:
        return x
    return apply("reshape", x, attrs=(shape,))


def getitem(x, key):
    """``x[key]`` with a static key; the event axis of an event array can only be kept whole."""
    if not isinstance(key, tuple):
        key = (key,)
    for k in key:
        if isinstance(k, Tracer):
            raise TracingError("indexing with a traced value: indices must be fixed at record "
                               "time; use tape.where or weights to select by value")
        if isinstance(k, np.ndarray) and k.dtype == bool and x.event:
            raise TracingError("boolean masks over events are not supported on traced data: "
                               "the event count must not depend on values. Use weights or "
                               "tape.where(mask, term, 0.0) instead")
    if not x.event:
        return _from_template(x, _trailing_template(x)[key])
    first = key[0] if key else slice(None)
    if first is Ellipsis:
        rest = key
    elif isinstance(first, slice) and first == slice(None):
        rest = key[1:]
    else:
        raise TracingError(
            f"indexing the event axis (axis 0) of an event array with {first!r}: events are "
            "processed all at once, chunk by chunk. Select with weights or tape.where instead, "
            "or index the trailing axes with x[:, ...]")
    return _from_template(x, _trailing_template(x)[rest] if rest else _trailing_template(x))


def reshape(x, shape, order="C"):
    """Reshape; an event array keeps its event axis first (``shape[0]`` must be -1 or N)."""
    if not isinstance(x, Tracer):
        return np.reshape(x, shape, order=order)
    if order != "C":
        raise TracingError("only C-order reshapes are recorded")
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if x.event:
        if not shape or shape[0] not in (-1, x.graph.n_events):
            raise ShapeError(f"reshape of an event array to {shape}: the event axis must stay "
                             "first (use -1 or the event count for it)")
        rest = shape[1:]
        if -1 in rest:
            raise ShapeError("only the event axis may be -1 in a reshape of an event array")
        if _math.prod(rest) != x.node.size:
            raise ShapeError(f"cannot reshape event rows of shape {x.node.shape} to {rest}")
        return reshape_trailing(x, rest)
    new = np.empty(x.node.shape, dtype=np.int8).reshape(shape).shape
    return reshape_trailing(x, new)


def transpose(x, axes=None):
    """Permute axes; an event array must keep its event axis first."""
    if not isinstance(x, Tracer):
        return np.transpose(x, axes)
    if x.event:
        nd = len(x.node.shape) + 1
        axes = tuple(range(nd))[::-1] if axes is None else tuple(a % nd for a in axes)
        if axes[0] != 0:
            raise ShapeError("transpose of an event array must keep the event axis first")
        return _from_template(x, np.transpose(_trailing_template(x), [a - 1 for a in axes[1:]]))
    return _from_template(x, np.transpose(_trailing_template(x), axes))


def broadcast_to(x, shape):
    """Broadcast to `shape` (an event array's shape starts with the event count)."""
    if not isinstance(x, Tracer):
        return np.broadcast_to(x, shape)
    shape = tuple(shape)
    if x.event:
        if shape[0] != x.graph.n_events:
            raise ShapeError("broadcast_to of an event array must keep its event axis")
        shape = shape[1:]
    s = x.node.shape
    pad = (1,) * (len(shape) - len(s)) + s
    return broadcast_trailing(reshape_trailing(x, pad), shape)


def expand_dims(x, axis):
    shape = list(x.shape)
    axis = axis % (len(shape) + 1)
    shape.insert(axis, 1)
    return reshape(x, tuple(shape))


def concatenate(arrays, axis=0, **kwargs):
    """Concatenate along `axis` (not the event axis); each input is scattered into place."""
    arrays = list(arrays)
    if not _traced(*arrays):
        return np.concatenate(arrays, axis=axis, **kwargs)
    graph = _graph_of(*arrays)
    xs = [_as_tracer(a, graph) for a in arrays]
    events = {x.event for x in xs}
    if len(events) > 1:
        raise ShapeError("concatenate: mix of event arrays and other arrays; broadcast first")
    event = events.pop()
    nd = len(xs[0].node.shape)
    if any(len(x.node.shape) != nd for x in xs):
        raise ShapeError("concatenate: inputs have different numbers of dimensions")
    if axis is None:
        xs = [reshape_trailing(x, (x.node.size,)) for x in xs]
        nd, axis = 1, 0
    if event:
        axis = axis % (nd + 1)
        if axis == 0:
            raise ShapeError("concatenate along the event axis is not supported: all events of a "
                             "tape come from the same data arrays")
        axis -= 1
    else:
        axis = axis % nd
    sizes = [x.node.shape[axis] for x in xs]
    out_shape = list(xs[0].node.shape)
    out_shape[axis] = builtins.sum(sizes)
    for x in xs:
        s = list(x.node.shape)
        s[axis] = out_shape[axis]
        if tuple(s) != tuple(out_shape):
            raise ShapeError("concatenate: shapes differ off the concatenation axis")
    if axis == 0:     # every piece is one contiguous block: copies, no scatter
        flat = [reshape_trailing(x, (x.node.size,)) for x in xs]
        return reshape_trailing(apply("concat", *flat), tuple(out_shape))
    pos = np.arange(_math.prod(out_shape)).reshape(out_shape)
    parts = np.split(pos, np.cumsum(sizes)[:-1], axis=axis)
    out = None
    for x, p in zip(xs, parts):
        term = scatter_add(x, p.ravel(), out_shape)
        out = term if out is None else out + term
    return out


def stack(arrays, axis=0, **kwargs):
    """Stack along a new axis (not in front of the event axis)."""
    arrays = list(arrays)
    if not _traced(*arrays):
        return np.stack(arrays, axis=axis, **kwargs)
    graph = _graph_of(*arrays)
    xs = [_as_tracer(a, graph) for a in arrays]
    return concatenate([expand_dims(x, axis) for x in xs], axis=axis)


# ---------------------------------------------------------------------------------------------
# Reductions.
def _full_axes(x, axis):
    nd = x.ndim
    if axis is None:
        return tuple(range(nd))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -nd <= a < nd:
            raise np.exceptions.AxisError(a, nd)
        out.append(int(a) % nd)
    return tuple(sorted(set(out)))


def _reduce(x, axis, keepdims, kind):
    """sum/max over `axis`: trailing axes first (segment reduce), then the event axis."""
    axes = _full_axes(x, axis)
    off = 1 if x.event else 0
    tshape = x.node.shape
    t_axes = [a - off for a in axes if a - off >= 0]
    keep = [i for i in range(len(tshape)) if i not in t_axes]
    y = x
    if t_axes:
        perm = keep + t_axes
        if perm != list(range(len(tshape))):
            y = _from_template(y, np.transpose(_trailing_template(y), perm))
        m = _math.prod([tshape[i] for i in t_axes])
        out_shape = tuple(tshape[i] for i in keep)
        y = apply("sum_last" if kind == "sum" else "max_last", y, attrs=(m, out_shape))
    if x.event and 0 in axes:
        y = apply("sum_events" if kind == "sum" else "max_events", y)
    if keepdims:
        full = list(x.shape)
        for a in axes:
            full[a] = 1
        if x.event and 0 not in axes:
            y = reshape_trailing(y, tuple(full[1:]))
        else:
            y = reshape_trailing(y, tuple(full))
    return y


def sum(x, axis=None, keepdims=False, **kwargs):
    """Sum over `axis` (all by default). Over events: pairwise within a chunk, compensated across.

    >>> import numpy as np, tape
    >>> f = tape.record(lambda p, x: tape.sum((x - p[0]) ** 2), [0.0], data={"x": np.arange(4.0)})
    >>> f([1.0])
    6.0
    """
    _no_extra(kwargs, "sum")
    if not isinstance(x, Tracer):
        return np.sum(x, axis=axis, keepdims=keepdims)
    return _reduce(x, axis, keepdims, "sum")


def mean(x, axis=None, keepdims=False, **kwargs):
    """Mean over `axis`; over events it divides by the event count at replay time."""
    _no_extra(kwargs, "mean")
    if not isinstance(x, Tracer):
        return np.mean(x, axis=axis, keepdims=keepdims)
    axes = _full_axes(x, axis)
    count = 1.0
    for a in axes:
        if not (x.event and a == 0):
            count *= x.shape[a]
    s = sum(x, axis=axis, keepdims=keepdims)
    if x.event and 0 in axes:
        return s / (n_events(x) * count)
    return s * (1.0 / count)


def amax(x, axis=None, keepdims=False, **kwargs):
    """Maximum over `axis` (derivative to the maximal element; ties share it)."""
    _no_extra(kwargs, "max")
    if not isinstance(x, Tracer):
        return np.max(x, axis=axis, keepdims=keepdims)
    return _reduce(x, axis, keepdims, "max")


def amin(x, axis=None, keepdims=False, **kwargs):
    """Minimum over `axis`."""
    if not isinstance(x, Tracer):
        return np.min(x, axis=axis, keepdims=keepdims)
    return -amax(-x, axis=axis, keepdims=keepdims, **kwargs)


def logsumexp(x, axis=None, keepdims=False, b=None):
    """log(sum(b * exp(x))) over `axis`, shifted by the maximum so that it cannot overflow.

    >>> import numpy as np, tape
    >>> round(float(tape.logsumexp(np.array([1000.0, 1000.0]))), 6)
    1000.693147
    """
    if not _traced(x, b):
        return _special.logsumexp(x, axis=axis, keepdims=keepdims, b=b)
    if not isinstance(x, Tracer):
        x = _as_tracer(x, b.graph)
    m = stop_gradient(amax(x, axis=axis, keepdims=True))
    m = where(isfinite_mask(m), m, 0.0)
    e = exp(x - m)
    if b is not None:
        e = e * b
    s = sum(e, axis=axis, keepdims=True)
    out = log(s) + m
    if not keepdims:
        shape = tuple(d for i, d in enumerate(x.shape) if i not in _full_axes(x, axis))
        if x.event and 0 not in _full_axes(x, axis):
            out = reshape_trailing(out, shape[1:])
        else:
            out = reshape_trailing(out, shape)
    return out


def _no_extra(kwargs, name):
    kwargs = {k: v for k, v in kwargs.items() if v is not None and not (k == "dtype" and np.dtype(v) == np.float64)}
    if kwargs:
        raise TracingError(f"{name}: keyword arguments {sorted(kwargs)} are not supported on traced values")


def matmul(a, b):
    """Matrix product with numpy's 1-D conventions; event rows times a parameter matrix use dgemm."""
    if not _traced(a, b):
        return np.matmul(a, b)
    graph = _graph_of(a, b)
    a, b = _as_tracer(a, graph), _as_tracer(b, graph)
    ash, bsh = a.node.shape, b.node.shape
    if len(bsh) == 1:
        if len(ash) == 1 and not a.event:
            return sum(a * b)
        out = apply("matmul", a, reshape_trailing(b, (bsh[0], 1)))
        return reshape_trailing(out, out.node.shape[:-1])
    if len(ash) == 1 and not a.event:
        out = apply("matmul", reshape_trailing(a, (1, ash[0])), b)
        return reshape_trailing(out, (bsh[1],))
    return apply("matmul", a, b)


def dot(a, b):
    """numpy.dot for 1-D and 2-D operands (see ``matmul``)."""
    if not _traced(a, b):
        return np.dot(a, b)
    return matmul(a, b)


# ---------------------------------------------------------------------------------------------
# What numpy dispatches to: ufunc names (``__array_ufunc__``) and functions (``__array_function__``).
UFUNCS = {
    "add": add, "subtract": subtract, "multiply": multiply, "divide": divide,
    "true_divide": divide, "power": power, "negative": negative, "positive": lambda x: x,
    "absolute": abs, "fabs": abs, "exp": exp, "log": log, "log1p": log1p, "expm1": expm1,
    "sqrt": sqrt, "square": square, "reciprocal": reciprocal, "sign": sign, "sin": sin,
    "cos": cos, "tanh": tanh, "arctan": arctan, "maximum": maximum, "minimum": minimum, "greater": greater,
    "greater_equal": greater_equal, "less": less, "less_equal": less_equal, "equal": equal,
    "not_equal": not_equal, "logaddexp": logaddexp, "exp2": exp2, "log2": log2, "log10": log10,
    "sinh": sinh, "cosh": cosh, "matmul": matmul,
    # scipy.special ufuncs
    "erf": erf, "erfc": erfc, "gammaln": lgamma, "psi": digamma, "expit": sigmoid,
    "xlogy": xlogy, "ndtr": ndtr, "log_ndtr": log_ndtr,
}

FUNCTIONS = {
    np.sum: sum, np.mean: mean, np.max: amax, np.min: amin, np.amax: amax, np.amin: amin,
    np.where: where, np.clip: clip, np.dot: dot, np.concatenate: concatenate, np.stack: stack,
    np.reshape: reshape, np.transpose: transpose, np.broadcast_to: broadcast_to,
    np.expand_dims: expand_dims, np.ravel: lambda x, order="C": reshape(x, (-1,), order),
    np.shape: lambda x: x.shape, np.ndim: lambda x: x.ndim, np.size: lambda x, axis=None: (
        x.size if axis is None else x.shape[axis]),
    np.atleast_1d: lambda x: x if x.ndim >= 1 else reshape(x, (1,)),
}
