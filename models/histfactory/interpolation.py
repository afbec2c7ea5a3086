"""HistFactory interpolation codes, vectorized, each with a slow loop-based reference.

All vectorized functions take the nuisance parameters ``alpha`` (a numpy array or a traced
value, one entry per (modifier, sample, bin) item) and constant numpy arrays of the same length,
and record a fixed handful of elementwise nodes however many items there are. Branches are
selected with ``tape.where``; the input of every branch that could produce NaN or infinity where it
is not taken is guarded first (the double-where pattern), so no NaN leaks into derivatives.

Additive (histosys), returning the change of the yield:

- code 0, piecewise linear: ``alpha * (hi - nom)`` for alpha > 0, ``alpha * (nom - lo)`` else.
- code 4p, linear outside |alpha| <= 1 and a polynomial inside,
  ``alpha * S + alpha^2 (15 - 10 alpha^2 + 3 alpha^4) A`` with ``S = (up + dn) / 2``,
  ``A = (up - dn) / 16`` (pyhf's convention).

Multiplicative (normsys), returning the LOG of the factor (the factors of all normsys modifiers of
a sample are multiplied by summing logs, one scatter-add for the whole model):

- code 1, piecewise exponential: ``hi^alpha`` for alpha > 0, ``lo^(-alpha)`` else.
- code 4, exponential outside |alpha| < 1 and, inside, the 6th-degree polynomial
  ``1 + sum_i a_i alpha^i`` matching value, first and second derivatives at alpha = +-1.

The ``_slow_code*`` functions compute the same per element with Python loops, from the definitions
(code 4 solves its 6x6 system per element with ``numpy.linalg.solve``); tests check the fast
versions against them.
"""
import math

import numpy as np

import tape
from tape import math as T

__all__ = ["histosys_code0", "histosys_code4p", "normsys_log_code1", "normsys_log_code4",
           "code4_coefficients", "HISTOSYS_CODES", "NORMSYS_CODES"]


# ---------------------------------------------------------------------------------------------
# Additive codes (histosys).
def histosys_code0(alpha, up, dn):
    """Piecewise-linear change of the yield; `up` = hi - nom, `dn` = nom - lo."""
    return tape.where(T.greater(alpha, 0.0), alpha * up, alpha * dn)


def histosys_code4p(alpha, up, dn):
    """Linear for |alpha| > 1, polynomial inside (pyhf's code 4p); `up` = hi - nom, `dn` = nom - lo."""
    s = 0.5 * (up + dn)
    a = 0.0625 * (up - dn)
    a2 = alpha * alpha
    inner = alpha * s + a2 * (15.0 + a2 * (-10.0 + 3.0 * a2)) * a
    outer = tape.where(T.greater(alpha, 1.0), alpha * up, alpha * dn)
    inside = T.less_equal(tape.abs(alpha), 1.0)
    return tape.where(inside, inner, outer)


def _slow_code0(alpha, hi, nom, lo):
    out = []
    for a, h, n, lw in zip(alpha, hi, nom, lo):
        out.append(a * (h - n) if a > 0 else a * (n - lw))
    return np.array(out)


def _slow_code4p(alpha, hi, nom, lo):
    out = []
    for a, h, n, lw in zip(alpha, hi, nom, lo):
        up, dn = h - n, n - lw
        if a > 1:
            out.append(a * up)
        elif a < -1:
            out.append(a * dn)
        else:
            s, asym = (up + dn) / 2.0, (up - dn) / 16.0
            out.append(a * s + a ** 2 * (15 - 10 * a ** 2 + 3 * a ** 4) * asym)
    return np.array(out)


# ---------------------------------------------------------------------------------------------
# Multiplicative codes (normsys), in log space.
def normsys_log_code1(alpha, log_hi, log_lo):
    """log of hi^alpha (alpha > 0) or lo^(-alpha) (alpha <= 0); `log_hi`, `log_lo` constants."""
    return tape.where(T.greater(alpha, 0.0), alpha * log_hi, -alpha * log_lo)


def _code4_system(alpha0=1.0):
    """The 6x6 matrix of code 4's conditions on f(x) = 1 + sum_i a_i x^i at x = +-alpha0."""
    rows = []
    for x in (alpha0, -alpha0):      # f(x) - 1
        rows.append([x ** i for i in range(1, 7)])
    for x in (alpha0, -alpha0):      # f'(x)
        rows.append([i * x ** (i - 1) for i in range(1, 7)])
    for x in (alpha0, -alpha0):      # f''(x)
        rows.append([i * (i - 1) * x ** (i - 2) if i >= 2 else 0.0 for i in range(1, 7)])
    return np.array(rows, dtype=np.float64)


def _code4_rhs(hi, lo, alpha0=1.0):
    """Right-hand sides: value, slope and curvature of hi^x at alpha0 and lo^(-x) at -alpha0."""
    lh, ll = np.log(hi), np.log(lo)
    uh, ul = np.power(hi, alpha0), np.power(lo, alpha0)
    return np.stack([uh - 1.0, ul - 1.0, lh * uh, -ll * ul, lh * lh * uh, ll * ll * ul])


_CODE4_INVERSE = np.linalg.inv(_code4_system(1.0))


def code4_coefficients(hi, lo):
    """Coefficients a_1..a_6 of code 4's polynomial, shape (6, n), for factors `hi`, `lo`."""
    hi = np.asarray(hi, dtype=np.float64)
    lo = np.asarray(lo, dtype=np.float64)
    return _CODE4_INVERSE @ _code4_rhs(hi, lo)


def normsys_log_code4(alpha, log_hi, log_lo, coefficients):
    """log of code 4's factor; `coefficients` from ``code4_coefficients``, shape (6, n)."""
    inside = T.less(tape.abs(alpha), 1.0)
    x = tape.where(inside, alpha, 0.0)         # guard: the polynomial only sees |x| < 1
    c = coefficients
    poly = c[5] * x + c[4]
    for k in (3, 2, 1, 0):
        poly = poly * x + c[k]
    poly = poly * x + 1.0
    log_poly = tape.log(tape.where(inside, poly, 1.0))
    outer = tape.where(T.greater_equal(alpha, 1.0), alpha * log_hi, -alpha * log_lo)
    return tape.where(inside, log_poly, outer)


def _slow_code1(alpha, hi, lo):
    return np.array([math.pow(h, a) if a > 0 else math.pow(lw, -a)
                     for a, h, lw in zip(alpha, hi, lo)])


def _slow_code4(alpha, hi, lo):
    system = _code4_system(1.0)
    out = []
    for a, h, lw in zip(alpha, hi, lo):
        if a >= 1:
            out.append(math.pow(h, a))
        elif a <= -1:
            out.append(math.pow(lw, -a))
        else:
            coef = np.linalg.solve(system, _code4_rhs(np.float64(h), np.float64(lw)))
            out.append(1.0 + sum(coef[i] * a ** (i + 1) for i in range(6)))
    return np.array(out)


HISTOSYS_CODES = {"code0": histosys_code0, "code4p": histosys_code4p}
NORMSYS_CODES = {"code1": normsys_log_code1, "code4": normsys_log_code4}
