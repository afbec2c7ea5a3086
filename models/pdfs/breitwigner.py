"""BreitWigner(x, mean, width): the non-relativistic Breit-Wigner (Cauchy) line shape."""
import numpy as np

import tape

from .base import Pdf

__all__ = ["BreitWigner"]


class BreitWigner(Pdf):
    """1 / ((x - mean)^2 + width^2 / 4), normalized over the range (RooBreitWigner).

    Examples
    --------
    >>> from models import Observable, BreitWigner
    >>> round(BreitWigner(Observable("m", (80.0, 100.0)), 91.19, 2.5).integral(), 12)
    1.0
    """

    def __init__(self, x, mean, width):
        super().__init__([x], mean=mean, width=width)
        self.x = x

    def _log_unnorm(self, X, v):
        d = X[self.x.name] - v("mean")
        return -tape.log(tape.square(d) + 0.25 * tape.square(v("width")))

    def _log_integral(self, v, ranges):
        lo, hi = ranges[self.x.name]
        m, w = v("mean"), v("width")
        half = 0.5 * w
        return tape.log((tape.arctan((hi - m) / half) - tape.arctan((lo - m) / half)) / half)

    def _sample(self, n, rng, v):
        m, w = float(v("mean")), float(v("width"))
        lo, hi = self.x.limits
        a, b = np.arctan((lo - m) / (0.5 * w)), np.arctan((hi - m) / (0.5 * w))
        return {self.x.name: np.clip(m + 0.5 * w * np.tan(rng.uniform(a, b, n)), lo, hi)}
