"""CrystalBall: a Gaussian core with power-law tails (RooCrystalBall, RooCBShape).

Parametrization (RooCrystalBall's), with t = (x - m0) / sigma:

- core, -alphaL <= t <= alphaR: exp(-t^2 / 2);
- left tail, t < -alphaL: A (B - t)^-n with A = (n/alpha)^n exp(-alpha^2/2), B = n/alpha - alpha,
  evaluated as exp(-alpha^2/2 - n log1p(alpha (-alpha - t) / n)) -- the same function, written
  so that it neither overflows ((n/alpha)^n for large n) nor loses precision far out in the tail;
- right tail, t > alphaR: the mirror image with alphaR, nR.

``CrystalBall(x, m0, sigma, alpha, n)`` is one-sided (RooCBShape): the tail is on the left for
alpha > 0 and on the right for alpha < 0. ``CrystalBall(x, m0, sigma, alphaL, nL, alphaR, nR)``
is double-sided with one width, ``CrystalBall(x, m0, sigmaL, sigmaR, alphaL, nL, alphaR, nR)``
with a width on each side of m0 (RooCrystalBall's constructors). As ROOT does, the absolute
values of the widths and alphas are used.

The normalization is analytic: the range is cut into at most four pieces (left tail, core left
of m0, core right of m0, right tail); the core pieces integrate with erf/erfc
(``log_gauss_integral``), the tail pieces with the closed-form integral of the power law,
whose n -> 1 (logarithmic) limit is taken by a series, so that the value and its derivatives
in n are smooth through n = 1. The pieces are summed in log space, so that a range entirely in a
far tail does not underflow.

Sampling is exact and needs no envelope: a piece is chosen with its probability, then the event
drawn by the inverse CDF of that piece (truncated normal; closed-form inverse of the power law),
so that ranges of thousands of sigma sample as fast as narrow ones.
"""
import math

import numpy as np
from scipy import special

import tape

from .base import Pdf
from .gaussian import log_gauss_integral

__all__ = ["CrystalBall"]

_NEG = -1e300             # the log of an empty piece (masked out; never exponentiated)
_SERIES_BELOW = 0.1       # |(n - 1) D| under which (1 - e^-x)/x is summed as a series
# (1 - e^-x) / x = sum_j (-x)^j / (j + 1)!, enough terms for 1e-19 at |x| = 0.1
_SERIES = [(-1.0) ** j / math.factorial(j + 1) for j in range(12)]


def _log_tail(t, alpha, n):
    """log of the left power-law tail at t (valid for t <= -alpha; pass t clipped to it)."""
    return -0.5 * tape.square(alpha) - n * tape.log1p(alpha * (-alpha - t) / n)


def _log_one_minus_expm_over(x):
    """log((1 - exp(-x)) / x), smooth through x = 0 (a series there, both branches finite)."""
    small = tape.abs(x) < _SERIES_BELOW
    x_safe = tape.where(small, 1.0, x)
    exact = tape.log(-tape.expm1(-x_safe) / x_safe)
    x_small = tape.where(small, x, 0.0)
    poly = _SERIES[-1]
    for c in _SERIES[-2::-1]:
        poly = poly * x_small + c
    return tape.where(small, tape.log(poly), exact)


def _log_tail_integral(alpha, n, u1, u2):
    """log of the integral of the left tail over t in [-alpha - u2, -alpha - u1], 0 <= u1 < u2.

    With k = alpha/n the tail is exp(-alpha^2/2) (1 + k u)^-n in u = -alpha - t, whose integral
    is (1 + k u1)^(1-n) (1 - exp(-(n - 1) D)) / (k (n - 1)) with D = log((1 + k u2)/(1 + k u1));
    at n = 1 the factor (1 - exp(-(n - 1) D)) / (n - 1) is D (the logarithmic case).
    """
    k = alpha / n
    l1 = tape.log1p(k * u1)
    d = tape.log1p(k * (u2 - u1) / (1.0 + k * u1))
    s = n - 1.0
    return (-0.5 * tape.square(alpha) - s * l1 + tape.log(d)
            + _log_one_minus_expm_over(s * d) - tape.log(k))


def _tail_piece(t1, t2, alpha, n):
    """(non-empty, log integral) of the left tail over [t1, t2] cut at -alpha."""
    t2c = tape.minimum(t2, -alpha)
    ok = t2c > t1
    u1 = tape.where(ok, -alpha - t2c, 0.0)       # double where: an empty piece integrates [0, 1]
    u2 = tape.where(ok, -alpha - t1, 1.0)
    return ok, _log_tail_integral(alpha, n, u1, u2)


def _core_piece(t1, t2):
    """(non-empty, log integral) of exp(-t^2/2) over [t1, t2] (already cut to the core)."""
    ok = t2 > t1
    return ok, log_gauss_integral(0.0, 1.0, tape.where(ok, t1, -1.0), tape.where(ok, t2, 0.0))


def _log_sum(pieces):
    """log of the sum of exp(l) over the non-empty pieces (ok, l), shifted by their maximum."""
    masked = [tape.where(ok, lp, _NEG) for ok, lp in pieces]
    m = masked[0]
    for q in masked[1:]:
        m = tape.maximum(m, q)
    m = tape.stop_gradient(m)
    total = 0.0
    for ok, lp in pieces:
        total = total + tape.where(ok, tape.exp(tape.where(ok, lp - m, 0.0)), 0.0)
    return m + tape.log(total)


class CrystalBall(Pdf):
    """The Crystal Ball line shape, one- or double-sided (RooCBShape / RooCrystalBall).

    ``CrystalBall(x, m0, sigma, alpha, n)``: one tail, on the left for alpha > 0 (right for
    alpha < 0). ``CrystalBall(x, m0, sigma, alphaL, nL, alphaR, nR)`` and
    ``CrystalBall(x, m0, sigmaL, sigmaR, alphaL, nL, alphaR, nR)``: two tails.

    Examples
    --------
    >>> import numpy as np
    >>> from models import Observable, CrystalBall
    >>> x = Observable("x", (-1e4, 5.0))
    >>> cb = CrystalBall(x, 0.0, 1.0, 1.5, 3.0)
    >>> round(cb.integral(), 12)
    1.0
    >>> round(float(cb.log_prob(np.array([-1e4]))[0]), 6)      # 1e4 sigma out
    -27.65649
    """

    def __init__(self, x, m0, *args):
        if len(args) == 3:
            sigma, alpha, n = args
            super().__init__([x], m0=m0, sigma=sigma, alpha=alpha, n=n)
            self.double_sided = False
        elif len(args) in (5, 6):
            if len(args) == 5:
                sigma, alpha_l, n_l, alpha_r, n_r = args
                sigma_l = sigma_r = sigma
            else:
                sigma_l, sigma_r, alpha_l, n_l, alpha_r, n_r = args
            super().__init__([x], m0=m0, sigmaL=sigma_l, sigmaR=sigma_r, alphaL=alpha_l,
                             nL=n_l, alphaR=alpha_r, nR=n_r)
            self.double_sided = True
        else:
            raise TypeError("CrystalBall(x, m0, sigma, alpha, n), (x, m0, sigma, alphaL, nL, "
                            "alphaR, nR) or (x, m0, sigmaL, sigmaR, alphaL, nL, alphaR, nR); got "
                            f"{len(args) + 2} arguments")
        self.x = x

    # -- one-sided: mirrored so that the tail is always on the left ----------------------------
    def _one_sided(self, v):
        alpha = v("alpha")
        side = tape.where(alpha < 0.0, -1.0, 1.0)     # RooCBShape: alpha < 0 puts the tail right
        return v("m0"), tape.abs(v("sigma")), side, tape.abs(alpha), v("n")

    def _log_unnorm(self, X, v):
        x = X[self.x.name]
        if not self.double_sided:
            m0, sigma, side, a, n = self._one_sided(v)
            t = side * ((x - m0) / sigma)
            return tape.where(t < -a, _log_tail(tape.minimum(t, -a), a, n),
                              -0.5 * tape.square(t))
        m0 = v("m0")
        sl, sr = tape.abs(v("sigmaL")), tape.abs(v("sigmaR"))
        al, ar = tape.abs(v("alphaL")), tape.abs(v("alphaR"))
        d = x - m0
        t = d / tape.where(d < 0.0, sl, sr)
        left = _log_tail(tape.minimum(t, -al), al, v("nL"))
        right = _log_tail(tape.minimum(-t, -ar), ar, v("nR"))
        return tape.where(t < -al, left, tape.where(t > ar, right, -0.5 * tape.square(t)))

    def _log_integral(self, v, ranges):
        lo, hi = ranges[self.x.name]
        if not self.double_sided:
            m0, sigma, side, a, n = self._one_sided(v)
            up = side > 0.0
            t1 = tape.where(up, (lo - m0) / sigma, (m0 - hi) / sigma)
            t2 = tape.where(up, (hi - m0) / sigma, (m0 - lo) / sigma)
            pieces = [_tail_piece(t1, t2, a, n), _core_piece(tape.maximum(t1, -a), t2)]
            return tape.log(sigma) + _log_sum(pieces)
        m0 = v("m0")
        sl, sr = tape.abs(v("sigmaL")), tape.abs(v("sigmaR"))
        al, ar = tape.abs(v("alphaL")), tape.abs(v("alphaR"))
        l1, l2 = (lo - m0) / sl, tape.minimum((hi - m0) / sl, 0.0)      # left of m0, in sigmaL
        r1, r2 = tape.maximum((lo - m0) / sr, 0.0), (hi - m0) / sr      # right of m0, in sigmaR
        log_sl, log_sr = tape.log(sl), tape.log(sr)
        pieces = []
        for (ok, lp), log_s in ((_tail_piece(l1, l2, al, v("nL")), log_sl),
                                (_core_piece(tape.maximum(l1, -al), l2), log_sl),
                                (_core_piece(r1, tape.minimum(r2, ar)), log_sr),
                                (_tail_piece(-r2, -r1, ar, v("nR")), log_sr)):
            pieces.append((ok, lp + log_s))
        return _log_sum(pieces)

    # -- sampling (plain floats): choose a piece, invert its CDF --------------------------------
    def _pieces(self, v):
        """[(kind, t1, t2, alpha, n, x0, scale)]: x = x0 + scale * t over t in [t1, t2].

        kind "tail" is the left power-law tail of (alpha, n) cut at -alpha, "core" the Gaussian.
        """
        lo, hi = self.x.limits
        f = float
        if not self.double_sided:
            m0, sigma, a, n = f(v("m0")), abs(f(v("sigma"))), abs(f(v("alpha"))), f(v("n"))
            side = -1.0 if f(v("alpha")) < 0.0 else 1.0
            t1, t2 = sorted(((lo - m0) * side / sigma, (hi - m0) * side / sigma))
            sc = side * sigma
            return [("tail", t1, min(t2, -a), a, n, m0, sc),
                    ("core", max(t1, -a), t2, a, n, m0, sc)]
        m0 = f(v("m0"))
        sl, sr = abs(f(v("sigmaL"))), abs(f(v("sigmaR")))
        al, ar = abs(f(v("alphaL"))), abs(f(v("alphaR")))
        nl, nr = f(v("nL")), f(v("nR"))
        l1, l2 = (lo - m0) / sl, min((hi - m0) / sl, 0.0)
        r1, r2 = max((lo - m0) / sr, 0.0), (hi - m0) / sr
        return [("tail", l1, min(l2, -al), al, nl, m0, sl),
                ("core", max(l1, -al), l2, al, nl, m0, sl),
                ("core", r1, min(r2, ar), ar, nr, m0, sr),
                ("tail", -r2, min(-r1, -ar), ar, nr, m0, -sr)]

    def _sample(self, n, rng, v):
        pieces = [p for p in self._pieces(v) if p[2] > p[1]]
        logs = []
        for kind, t1, t2, a, nn, _, scale in pieces:
            if kind == "tail":
                lp = _log_tail_integral(a, nn, -a - t2, -a - t1)
            else:
                lp = log_gauss_integral(0.0, 1.0, t1, t2)
            logs.append(float(lp) + math.log(abs(scale)))
        prob = np.exp(np.array(logs) - max(logs))
        counts = rng.multinomial(n, prob / prob.sum())
        out = []
        for (kind, t1, t2, a, nn, x0, scale), k in zip(pieces, counts):
            r = rng.uniform(0.0, 1.0, k)
            t = _tail_inverse(r, t1, t2, a, nn) if kind == "tail" else _normal_inverse(r, t1, t2)
            out.append(x0 + scale * t)
        x = rng.permutation(np.concatenate(out)) if out else np.empty(0)
        lo, hi = self.x.limits
        return {self.x.name: np.clip(x, lo, hi)}


def _normal_inverse(r, t1, t2):
    """Inverse CDF of the standard normal truncated to [t1, t2] at probabilities r."""
    if t1 > 0.0:                                   # upper side: mirror, the lower tail is exact
        return -_normal_inverse(1.0 - r, -t2, -t1)
    p1, p2 = special.ndtr(t1), special.ndtr(t2)
    return np.clip(special.ndtri(p1 + r * (p2 - p1)), t1, t2)


def _tail_inverse(r, t1, t2, alpha, n):
    """Inverse CDF of the left tail (1 + k u)^-n, u = -alpha - t, over t in [t1, t2]."""
    k = alpha / n
    u1, u2 = -alpha - t2, -alpha - t1
    d = math.log1p(k * (u2 - u1) / (1.0 + k * u1))
    s = n - 1.0
    if abs(s * d) < 1e-12:
        ell = r * d                                # the logarithmic case, n = 1
    else:
        ell = -np.log1p(r * np.expm1(-s * d)) / s
    u = u1 + (1.0 + k * u1) * np.expm1(ell) / k
    return np.clip(-alpha - u, t1, t2)
