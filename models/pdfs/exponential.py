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
        lo, hi = ranges[self.x.name]
        c = v("c")
        small = tape.abs(c * (hi - lo)) < 1e-8
        c_safe = tape.where(small, 1.0, c)            # double where: no 0/0 in either branch
        exact = tape.log(tape.expm1(c_safe * (hi - lo)) / c_safe)
        series = np.log(hi - lo) + 0.5 * c * (hi - lo)  # log((e^{cw} - 1)/c) near c = 0
        return c * lo + tape.where(small, series, exact)

    def _sample(self, n, rng, v):
        c = float(v("c"))
        lo, hi = self.x.limits
        u = rng.uniform(0.0, 1.0, n)
        if abs(c * (hi - lo)) < 1e-8:
            return {self.x.name: lo + u * (hi - lo)}
        # inverse CDF: x = lo + log1p(u (e^{c w} - 1)) / c
        return {self.x.name: np.clip(lo + np.log1p(u * np.expm1(c * (hi - lo))) / c, lo, hi)}
