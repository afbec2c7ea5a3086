"""tapefit's tape AD engine: record a numpy likelihood once, replay value and exact derivatives.

>>> import numpy as np, tape
>>> x = np.random.default_rng(1).normal(1.0, 2.0, 1000)
>>> def nll(p, x):
...     mu, sigma = p
...     return np.sum(0.5 * ((x - mu) / sigma) ** 2 + np.log(sigma))
>>> f = tape.record(nll, np.array([0.0, 1.0]), data={"x": x})
>>> value, gradient = f.value_and_grad(np.array([1.0, 2.0]))

Recording (``tracer``, ``ops``, ``passes``) is kept apart from replay (``_replay``): the replay
interpreter never sees a tracer.
"""
import os as _os

# Idle OpenMP workers sleep instead of spinning between calls: a fit calls the tape thousands of
# times with Python work in between, and spinning workers would steal that core (set the
# variable yourself to choose otherwise).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import ops as _ops  # noqa: E402,F401  (registers the op set)
from .check import check_grads, numerical_grad
from .errors import DataError, ShapeError, TracingError
from .fit import fit
from .function import Function
from .math import (abs, add, arctan, amax, amin, clip, concatenate, cos, cosh, digamma, divide, dot, erf,
                   erfc, exp, exp2, expm1, lgamma, log, log1p, log2, log10, log_ndtr, logaddexp,
                   logsumexp,
                   matmul, maximum, mean, minimum, multiply, n_events, ndtr, negative, polygamma, polyval, power,
                   reshape, scatter_prod, sigmoid, sign, sin, sinh, softplus, spmv, sqrt, square, stack, stop_gradient,
                   subtract, sum, tanh, transpose, trigamma, where, xlogy)
from .persist import TapeFileError, load, save
from .profile import ProfileResult, profile
from .record import record
from .result import FitResult
from .tracer import Tracer
from .threads import get_num_threads, set_num_threads

max = amax
min = amin

__version__ = "0.1.0"

__all__ = [
    "record", "Function", "Tracer", "fit", "FitResult", "profile", "ProfileResult", "save", "load", "TapeFileError", "set_num_threads", "get_num_threads", "TracingError", "ShapeError", "DataError", "check_grads",
    "numerical_grad", "abs", "add", "arctan", "amax", "amin", "clip", "concatenate", "cos", "cosh",
    "digamma", "divide", "dot", "erf", "erfc", "exp", "exp2", "expm1", "lgamma", "log", "log1p",
    "log2", "log10", "log_ndtr", "logaddexp", "logsumexp", "matmul", "max", "maximum", "mean", "min",
    "minimum", "multiply", "n_events", "ndtr", "negative", "polygamma", "polyval", "power", "reshape", "scatter_prod", "sigmoid", "sign",
    "sin", "sinh", "softplus", "spmv", "sqrt", "square", "stack", "stop_gradient", "subtract", "sum",
    "tanh", "transpose", "trigamma", "where", "xlogy",
]
