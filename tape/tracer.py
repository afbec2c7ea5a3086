"""Tracer: the value a recorded function sees in place of its parameters and data.

A Tracer is a handle on one node of the graph being recorded. Python operators,
``__array_ufunc__`` (``np.exp(t)``, ``scipy.special.erf(t)``) and ``__array_function__``
(``np.sum``, ``np.where``, ...) record nodes, so plain numpy likelihood code records unchanged.
Anything that would need the value now (``if t > 0``, ``float(t)``, ``np.asarray(t)``) raises
``TracingError`` with a hint, because the tape is recorded once and replayed for other values.
"""
import math

import numpy as np

from .errors import TracingError

__all__ = ["Tracer"]

_BRANCH_HINT = (
    "a traced value has no concrete value while the tape is recorded, so Python control flow "
    "(`if`, `while`, `and`/`or`, `bool()`) cannot depend on it. Record both branches with "
    "`tape.where(condition, a, b)` (or np.where), or use np.maximum/np.minimum/np.clip.")


class Tracer:
    """A traced array: a node of a recording graph. Behaves like a float64 ndarray."""

    __slots__ = ("graph", "id")
    __array_priority__ = 1000.0

    def __init__(self, graph, nid):
        self.graph = graph
        self.id = nid

    # -- array-like attributes ---------------------------------------------------------------
    @property
    def node(self):
        return self.graph.nodes[self.id]

    @property
    def event(self):
        """True when axis 0 is the event axis (the value depends on data)."""
        return self.graph.nodes[self.id].event

    @property
    def shape(self):
        n = self.graph.nodes[self.id]
        return ((self.graph.n_events,) + n.shape) if n.event else n.shape

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return math.prod(self.shape)

    @property
    def dtype(self):
        return np.dtype(np.float64)

    @property
    def T(self):
        return _m.transpose(self)

    def __len__(self):
        s = self.shape
        if not s:
            raise TypeError("len() of a traced scalar")
        return s[0]

    def __iter__(self):
        if self.event:
            raise TracingError("cannot iterate over the event axis of a traced array: write the "
                               "computation for all events at once (vectorized numpy)")
        if not self.shape:
            raise TypeError("iteration over a traced scalar")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self):
        n = self.node
        s = ("N",) + n.shape if n.event else n.shape
        return f"Tracer({n.op}, shape={s})"

    # -- concrete-value requests: errors ------------------------------------------------------
    def __bool__(self):
        raise TracingError("bool() of a traced value: " + _BRANCH_HINT)

    def __float__(self):
        raise TracingError("float() of a traced value: the tape is recorded once and replayed "
                           "for other parameter values, so there is no single float. Keep the "
                           "computation in traced operations (tape.exp, np.log, ...).")

    def __int__(self):
        raise TracingError("int() of a traced value: shapes and indices must not depend on "
                           "parameters or data")

    __index__ = __int__
    __complex__ = __float__

    def __array__(self, dtype=None, copy=None):
        raise TracingError(
            "a traced value was converted to a numpy array (np.asarray/np.array, or a function "
            "that does so). Use operations that tape records: numpy ufuncs, np.sum, np.where, "
            "np.dot/@, np.clip, ... or the tape.* functions.")

    # -- Python operators ---------------------------------------------------------------------
    def __add__(self, o): return _m.add(self, o)
    def __radd__(self, o): return _m.add(o, self)
    def __sub__(self, o): return _m.subtract(self, o)
    def __rsub__(self, o): return _m.subtract(o, self)
    def __mul__(self, o): return _m.multiply(self, o)
    def __rmul__(self, o): return _m.multiply(o, self)
    def __truediv__(self, o): return _m.divide(self, o)
    def __rtruediv__(self, o): return _m.divide(o, self)
    def __pow__(self, o): return _m.power(self, o)
    def __rpow__(self, o): return _m.power(o, self)
    def __matmul__(self, o): return _m.matmul(self, o)
    def __rmatmul__(self, o): return _m.matmul(o, self)
    def __neg__(self): return _m.negative(self)
    def __pos__(self): return self
    def __abs__(self): return _m.abs(self)
    def __gt__(self, o): return _m.greater(self, o)
    def __ge__(self, o): return _m.greater_equal(self, o)
    def __lt__(self, o): return _m.less(self, o)
    def __le__(self, o): return _m.less_equal(self, o)
    def __eq__(self, o): return _m.equal(self, o)
    def __ne__(self, o): return _m.not_equal(self, o)
    __hash__ = object.__hash__

    def __getitem__(self, key):
        return _m.getitem(self, key)

    # -- ndarray methods ----------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False): return _m.sum(self, axis=axis, keepdims=keepdims)
    def mean(self, axis=None, keepdims=False): return _m.mean(self, axis=axis, keepdims=keepdims)
    def max(self, axis=None, keepdims=False): return _m.amax(self, axis=axis, keepdims=keepdims)
    def min(self, axis=None, keepdims=False): return _m.amin(self, axis=axis, keepdims=keepdims)
    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _m.reshape(self, shape)
    def ravel(self): return _m.reshape(self, (-1,))
    def clip(self, lo=None, hi=None): return _m.clip(self, lo, hi)
    def dot(self, o): return _m.dot(self, o)
    def transpose(self, *axes): return _m.transpose(self, axes or None)
    def astype(self, dtype, copy=True):
        if np.dtype(dtype) != np.float64:
            raise TracingError(f"traced values are float64; astype({dtype}) is not recorded")
        return self
    def copy(self): return self

    # -- numpy protocols ----------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "reduce" and ufunc.__name__ in ("add", "maximum", "minimum"):
            red = {"add": _m.sum, "maximum": _m.amax, "minimum": _m.amin}[ufunc.__name__]
            return red(inputs[0], axis=kwargs.get("axis", 0), keepdims=kwargs.get("keepdims", False))
        fn = _m.UFUNCS.get(ufunc.__name__) if method == "__call__" else None
        if fn is None:
            what = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
            raise TracingError(f"numpy ufunc {what!r} is not supported on traced values; "
                               f"supported: {', '.join(sorted(_m.UFUNCS))}")
        if kwargs.get("out") is not None:
            raise TracingError(f"{ufunc.__name__}(..., out=...) cannot write into a traced value")
        extra = set(kwargs) - {"out", "dtype", "casting", "where"}
        if extra or kwargs.get("where", True) is not True:
            raise TracingError(f"{ufunc.__name__}: keyword arguments {sorted(set(kwargs) - {'out'})} "
                               "are not supported on traced values")
        return fn(*inputs)

    def __array_function__(self, func, types, args, kwargs):
        fn = _m.FUNCTIONS.get(func)
        if fn is None:
            name = getattr(func, "__module__", "numpy") + "." + func.__name__
            raise TracingError(f"{name} is not supported on traced values; supported numpy "
                               f"functions: {', '.join(sorted(f.__name__ for f in _m.FUNCTIONS))}")
        return fn(*args, **kwargs)


from . import math as _m  # noqa: E402  (math needs Tracer defined first)
