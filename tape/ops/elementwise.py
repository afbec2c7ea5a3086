"""Elementwise ops: each one's kernel, numpy reference, reverse rule and tangent rule together.

Reverse rules take the output adjoint ``g``, the op's output ``ans`` and its inputs; tangent rules
take an input tangent ``t`` instead of ``g``. For an elementwise op both multiply by the same
partial derivative, so the pairs below read alike; broadcasting is undone by ``tape.autodiff``.
"""
import math

import numpy as np
from scipy import special

from .. import math as T
from .core import defop, elementwise_shape

SQRT_PI_2 = 2.0 / math.sqrt(math.pi)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def unary(name, impl, vjp, jvp):
    """Register an elementwise one-argument op that runs the ``unary`` kernel ``name``."""
    return defop(name, ("unary", name), impl, elementwise_shape, (vjp,), (jvp,))


def binary(name, impl, vjp, jvp):
    """Register an elementwise two-argument op that runs the ``binary`` kernel ``name``."""
    return defop(name, ("binary", name), impl, elementwise_shape, vjp, jvp)


def _sigmoid(x):
    return special.expit(x)


def _safe_log_base(a):
    """log(a) where a > 0, else 0: d(a**b)/db where it is defined, no NaN from the other branch."""
    return T.log(T.where(a > 0, a, 1.0))


#       name          numpy reference      reverse rule                                   tangent rule
unary("neg",        np.negative,        lambda g, ans, x: -g,                          lambda t, ans, x: -t)
unary("exp",        np.exp,             lambda g, ans, x: g * ans,                     lambda t, ans, x: t * ans)
unary("log",        np.log,             lambda g, ans, x: g / x,                       lambda t, ans, x: t / x)
unary("log1p",      np.log1p,           lambda g, ans, x: g / (x + 1.0),               lambda t, ans, x: t / (x + 1.0))
unary("expm1",      np.expm1,           lambda g, ans, x: g * (ans + 1.0),             lambda t, ans, x: t * (ans + 1.0))
unary("sqrt",       np.sqrt,            lambda g, ans, x: g * 0.5 / ans,               lambda t, ans, x: t * 0.5 / ans)
unary("square",     np.square,          lambda g, ans, x: g * (2.0 * x),               lambda t, ans, x: t * (2.0 * x))
# (g ans) ans, not g ans^2: ans^2 overflows for |x| < 1.5e-154 where the product does not
unary("reciprocal", np.reciprocal,      lambda g, ans, x: -((g * ans) * ans),          lambda t, ans, x: -((t * ans) * ans))
unary("abs",        np.abs,             lambda g, ans, x: g * T.sign(x),               lambda t, ans, x: t * T.sign(x))
unary("sign",       np.sign,            None,                                          None)
unary("sin",        np.sin,             lambda g, ans, x: g * T.cos(x),                lambda t, ans, x: t * T.cos(x))
unary("cos",        np.cos,             lambda g, ans, x: -g * T.sin(x),               lambda t, ans, x: -t * T.sin(x))
unary("arctan",     np.arctan,          lambda g, ans, x: g / (1.0 + T.square(x)),     lambda t, ans, x: t / (1.0 + T.square(x)))
unary("tanh",       np.tanh,            lambda g, ans, x: g * (1.0 - T.square(ans)),   lambda t, ans, x: t * (1.0 - T.square(ans)))
unary("sigmoid",    _sigmoid,           lambda g, ans, x: g * (ans * (1.0 - ans)),     lambda t, ans, x: t * (ans * (1.0 - ans)))
unary("erf",        special.erf,        lambda g, ans, x: g * (SQRT_PI_2 * T.exp(-T.square(x))),
                                        lambda t, ans, x: t * (SQRT_PI_2 * T.exp(-T.square(x))))
unary("erfc",       special.erfc,       lambda g, ans, x: g * (-SQRT_PI_2 * T.exp(-T.square(x))),
                                        lambda t, ans, x: t * (-SQRT_PI_2 * T.exp(-T.square(x))))
# log of the normal CDF; its derivative phi(x) / Phi(x) = exp(-x^2/2 - ans) / sqrt(2 pi) stays
# finite in the lower tail, where Phi underflows
unary("log_ndtr",   special.log_ndtr,   lambda g, ans, x: g * T.exp(-0.5 * T.square(x) - ans) * INV_SQRT_2PI,
                                        lambda t, ans, x: t * T.exp(-0.5 * T.square(x) - ans) * INV_SQRT_2PI)
unary("lgamma",     special.gammaln,    lambda g, ans, x: g * T.digamma(x),            lambda t, ans, x: t * T.digamma(x))
unary("digamma",    special.psi,        lambda g, ans, x: g * T.polygamma(1, x),       lambda t, ans, x: t * T.polygamma(1, x))


def _polygamma_shape(graph, ids, attrs):
    n = graph.nodes[ids[0]]
    return n.shape, n.event, ids


# psi^(n)(x), n >= 1 (an attribute): each derivative is the next order, so derivatives of any
# order of lgamma and digamma are exact
defop("polygamma", ("polygamma", None), lambda x, n: special.polygamma(n, x), _polygamma_shape,
      (lambda g, ans, x, n: g * T.polygamma(n + 1, x),),
      (lambda t, ans, x, n: t * T.polygamma(n + 1, x),))

binary("add", np.add,
       (lambda g, ans, a, b: g, lambda g, ans, a, b: g),
       (lambda t, ans, a, b: t, lambda t, ans, a, b: t))
binary("sub", np.subtract,
       (lambda g, ans, a, b: g, lambda g, ans, a, b: -g),
       (lambda t, ans, a, b: t, lambda t, ans, a, b: -t))
binary("mul", np.multiply,
       (lambda g, ans, a, b: g * b, lambda g, ans, a, b: g * a),
       (lambda t, ans, a, b: t * b, lambda t, ans, a, b: a * t))
binary("div", np.divide,
       (lambda g, ans, a, b: g / b, lambda g, ans, a, b: -g * ans / b),
       (lambda t, ans, a, b: t / b, lambda t, ans, a, b: -t * ans / b))
binary("pow", np.power,
       (lambda g, ans, a, b: g * (b * T.power(a, b - 1.0)), lambda g, ans, a, b: g * (ans * _safe_log_base(a))),
       (lambda t, ans, a, b: t * (b * T.power(a, b - 1.0)), lambda t, ans, a, b: t * (ans * _safe_log_base(a))))
binary("maximum", np.maximum,
       (lambda g, ans, a, b: T.where(a >= b, g, 0.0), lambda g, ans, a, b: T.where(a < b, g, 0.0)),
       (lambda t, ans, a, b: T.where(a >= b, t, 0.0), lambda t, ans, a, b: T.where(a < b, t, 0.0)))
binary("minimum", np.minimum,
       (lambda g, ans, a, b: T.where(a <= b, g, 0.0), lambda g, ans, a, b: T.where(a > b, g, 0.0)),
       (lambda t, ans, a, b: T.where(a <= b, t, 0.0), lambda t, ans, a, b: T.where(a > b, t, 0.0)))
binary("logaddexp", np.logaddexp,
       (lambda g, ans, a, b: g * T.exp(a - ans), lambda g, ans, a, b: g * T.exp(b - ans)),
       (lambda t, ans, a, b: t * T.exp(a - ans), lambda t, ans, a, b: t * T.exp(b - ans)))



def _floor_log(a, b):
    return np.log(np.maximum(a, b))


def _floor_recip(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a >= b, 1.0 / a, 0.0)


# log(max(a, b)) with a floor b (recorded in place of log(maximum(a, b)) for a positive constant
# b by simplify: a pdf's log floored at 1e-300). Its derivative in a is floor_recip, 1/a above the
# floor and 0 below it, whose own derivative is -floor_recip^2: a Hessian's tangent of the NLL's
# adjoint costs two multiplies per direction instead of two selections and two multiplies.
binary("floor_log", _floor_log,
       (lambda g, ans, a, b: g * T.floor_recip(a, b), lambda g, ans, a, b: T.where(a < b, g / b, 0.0)),
       (lambda t, ans, a, b: t * T.floor_recip(a, b), lambda t, ans, a, b: T.where(a < b, t / b, 0.0)))
binary("floor_recip", _floor_recip,
       (lambda g, ans, a, b: -((g * ans) * ans), None),
       (lambda t, ans, a, b: -((t * ans) * ans), None))

# Comparisons give 1.0 / 0.0 and have no derivative.
for _name, _impl in dict(gt=np.greater, ge=np.greater_equal, lt=np.less, le=np.less_equal,
                         eq=np.equal, ne=np.not_equal).items():
    binary(_name, (lambda f: lambda a, b: f(a, b).astype(np.float64))(_impl), (None, None), (None, None))

# a * b + c in one pass (recorded in place of add(mul(a, b), c) by simplify)
defop("muladd", ("muladd", None), lambda a, b, c: a * b + c, elementwise_shape,
      (lambda g, ans, a, b, c: g * b, lambda g, ans, a, b, c: g * a, lambda g, ans, a, b, c: g),
      (lambda t, ans, a, b, c: t * b, lambda t, ans, a, b, c: a * t, lambda t, ans, a, b, c: t))
defop("where", ("where", None), lambda c, a, b: np.where(c != 0, a, b), elementwise_shape,
      (None, lambda g, ans, c, a, b: T.where(c, g, 0.0), lambda g, ans, c, a, b: T.where(c, 0.0, g)),
      (None, lambda t, ans, c, a, b: T.where(c, t, 0.0), lambda t, ans, c, a, b: T.where(c, 0.0, t)))
