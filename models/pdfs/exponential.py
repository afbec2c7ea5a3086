"""Exponential(x, c): exp(c x) on a finite range (RooExponential)."""
import numpy as np

import tape

from .base import Pdf

__all__ = ["Exponential"]


class Exponential(Pdf):
    """The density exp(c x) on the observable's range; c = 0 is the flat limit.

    Examples
    --------
    >>> from models import Observable, Exponential
    >>> e = Exponential(Observable("x", (0.0, 1.0)), -1.0)
    >>> round(e.integral(), 12)
    1.0
    """

    def __init__(self, x, c):
        super().__init__([x], c=c)
        self.x = x

    def _log_unnorm(self, X, v):
        return v("c") * X[self.x.name]

    def _log_integral(self, v, ranges):
        """log of the integral of exp(c x) over [lo, hi], stable for any sign and size of c w.

        c < 0: c lo + log(expm1(c w) / c); c > 0: c hi + log(-expm1(-c w) / c) (no overflow for
        large c w); |c w| < 1e-3: the series log w + c w/2 + (c w)^2/24 - (c w)^4/2880, exact
        to rounding there and in its first two derivatives. Each branch sees a safe c (double
        where), so the branches not taken stay finite.
        """
        lo, hi = ranges[self.x.name]
        c = v("c")
        w = hi - lo
        small = tape.abs(c * w) < 1e-3
        c_neg = tape.where(small, -1.0, tape.minimum(c, -1e-300))
        c_pos = tape.where(small, 1.0, tape.maximum(c, 1e-300))
        neg = c_neg * lo + tape.log(tape.expm1(c_neg * w) / c_neg)
        pos = c_pos * hi + tape.log(-tape.expm1(-c_pos * w) / c_pos)
        cw = c * w
        series = c * lo + tape.log(w) + 0.5 * cw + tape.square(cw) / 24.0 \
            - tape.square(tape.square(cw)) / 2880.0
        return tape.where(small, series, tape.where(c > 0.0, pos, neg))

    def _sample(self, n, rng, v):
        c = float(v("c"))
        lo, hi = self.x.limits
        w = hi - lo
        u = rng.uniform(0.0, 1.0, n)
        if abs(c * w) < 1e-12:
            x = lo + u * w
        elif c < 0:
            # inverse CDF from the lower edge: x = lo + log1p(u (e^{c w} - 1)) / c
            x = lo + np.log1p(u * np.expm1(c * w)) / c
        else:
            # from the upper edge, so that e^{c w} never overflows
            x = hi + np.log1p(-(1.0 - u) * -np.expm1(-c * w)) / c
        return {self.x.name: np.clip(x, lo, hi)}
