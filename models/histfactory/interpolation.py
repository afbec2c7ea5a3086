"""HistFactory interpolation codes as per-parameter weights, each with a slow loop-based reference.

Every code is written so that the work per (modifier, sample, bin) item is a fixed linear map or a
polynomial: the functions take the nuisance parameters ``alpha`` (one per parameter, numpy or
traced) and return weights; the model applies them to all items at once through constant sparse
matrices (``tape.spmv``, built by ``item_matrix``) and one ``tape.polyval``. Branches are selected
with ``tape.where`` on the parameters (a few hundred values), not on the thousands of items.

Additive (histosys), the change of the yield ``wu * up + wd * dn`` (``up = hi - nom``,
``dn = nom - lo``):

- code 0, piecewise linear: ``alpha * up`` for alpha > 0, ``alpha * dn`` else.
- code 4p, linear outside |alpha| <= 1 and a polynomial inside,
  ``alpha * S + alpha^2 (15 - 10 alpha^2 + 3 alpha^4) A`` with ``S = (up + dn) / 2``,
  ``A = (up - dn) / 16`` (pyhf's convention), i.e. ``wu = alpha/2 + P/16``, ``wd = alpha/2 - P/16``.

Multiplicative (normsys), the factor ``exp(wh * log(hi) + wl * log(lo)) * poly(x)``:

- code 1, piecewise exponential: ``hi^alpha`` for alpha > 0, ``lo^(-alpha)`` else (no polynomial).
- code 4, exponential outside |alpha| < 1 and, inside, the 6th-degree polynomial
  ``1 + sum_i a_i alpha^i`` matching value, first and second derivatives at alpha = +-1
  (``x`` is alpha inside and 0 outside, where every polynomial is 1).

The ``_slow_code*`` functions compute the same per element with Python loops, from the definitions
(code 4 solves its 6x6 system per element with ``numpy.linalg.solve``); tests check the fast
versions (``histosys_delta``, ``normsys_factor``) against them and against pyhf's.
"""
import math

import numpy as np

import tape
from tape import math as T

__all__ = ["histosys_weights_code0", "histosys_weights_code4p", "histosys_delta",
           "normsys_weights_code1", "normsys_weights_code4", "normsys_factor",
           "code4_coefficients", "item_matrix", "HISTOSYS_WEIGHTS", "NORMSYS_WEIGHTS"]


# ---------------------------------------------------------------------------------------------
# Additive codes (histosys): delta = wu * up + wd * dn with per-parameter weights (wu, wd).
def histosys_weights_code0(alpha):
    """Weights of code 0: (alpha, 0) for alpha > 0, (0, alpha) else."""
    up = T.greater(alpha, 0.0)
    return tape.where(up, alpha, 0.0), tape.where(up, 0.0, alpha)


def histosys_weights_code4p(alpha):
    """Weights of code 4p: the polynomial ``alpha * S + alpha^2 (15 - 10 alpha^2 + 3 alpha^4) A``
    with ``S = (up + dn) / 2``, ``A = (up - dn) / 16`` inside |alpha| <= 1, linear outside."""
    a2 = alpha * alpha
    half = 0.5 * alpha
    p16 = a2 * (0.9375 + a2 * (-0.625 + 0.1875 * a2))          # P(alpha) / 16
    inside = T.less_equal(tape.abs(alpha), 1.0)
    wu = tape.where(inside, half + p16, tape.where(T.greater(alpha, 1.0), alpha, 0.0))
    wd = tape.where(inside, half - p16, tape.where(T.less(alpha, -1.0), alpha, 0.0))
    return wu, wd


def histosys_delta(code, alpha, up, dn):
    """Change of the yield item by item (`alpha`, `up` = hi - nom, `dn` = nom - lo alike)."""
    wu, wd = HISTOSYS_WEIGHTS[code](alpha)
    return wu * up + wd * dn


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
# Multiplicative codes (normsys): factor = exp(wh * log(hi) + wl * log(lo)) * inner polynomial.
def normsys_weights_code1(alpha):
    """Weights of code 1 on (log hi, log lo): (alpha, 0) for alpha > 0, (0, -alpha) else."""
    up = T.greater(alpha, 0.0)
    return tape.where(up, alpha, 0.0), tape.where(up, 0.0, -alpha)


def normsys_weights_code4(alpha):
    """Code 4's weights on (log hi, log lo) outside |alpha| < 1, and the polynomial's variable
    ``x`` (alpha inside, 0 outside, where every polynomial is 1)."""
    wh = tape.where(T.greater_equal(alpha, 1.0), alpha, 0.0)
    wl = tape.where(T.less_equal(alpha, -1.0), -alpha, 0.0)
    x = tape.where(T.less(tape.abs(alpha), 1.0), alpha, 0.0)
    return wh, wl, x


def normsys_factor(code, alpha, hi, lo):
    """The factor item by item (`alpha`, `hi`, `lo` alike), for tests and references."""
    alpha = np.asarray(alpha, dtype=np.float64)
    if code == "code1":
        wh, wl = normsys_weights_code1(alpha)
        return np.exp(wh * np.log(hi) + wl * np.log(lo))
    wh, wl, x = normsys_weights_code4(alpha)
    poly = tape.polyval(np.concatenate([np.ones((1, alpha.size)), code4_coefficients(hi, lo)]), x)
    return np.exp(wh * np.log(hi) + wl * np.log(lo)) * poly


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


def item_matrix(rows, pidx, n_rows, blocks):
    """The sparse matrix that applies per-parameter weights to items: one column block per
    weight vector; item i puts ``blocks[b][i]`` at (``rows[i]``, block b, its parameter).

    Returns ``(params, matrix)``: the parameters used (sorted) and a CSR matrix of shape
    (n_rows, len(blocks) * len(params)), duplicates summed and zeros dropped.
    """
    import scipy.sparse as sp
    params, col = np.unique(np.asarray(pidx, dtype=np.int64), return_inverse=True)
    m = params.size
    r = np.tile(np.asarray(rows, dtype=np.int64), len(blocks))
    c = np.concatenate([b * m + col for b in range(len(blocks))])
    v = np.concatenate([np.asarray(x, dtype=np.float64) for x in blocks])
    mat = sp.csr_array((v, (r, c)), shape=(n_rows, len(blocks) * m))
    mat.sum_duplicates()
    mat.eliminate_zeros()
    return params, mat


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


HISTOSYS_WEIGHTS = {"code0": histosys_weights_code0, "code4p": histosys_weights_code4p}
NORMSYS_WEIGHTS = {"code1": normsys_weights_code1, "code4": normsys_weights_code4}
