"""Uniform(x): a flat density over the observable's range."""
import numpy as np

import tape

from .base import Pdf

__all__ = ["Uniform"]


class Uniform(Pdf):
    """A flat density (RooUniform).

    Examples
    --------
    >>> import numpy as np
    >>> from models import Observable, Uniform
    >>> float(Uniform(Observable("x", (0.0, 4.0))).pdf(np.array([1.0]))[0])
    0.25
    """

    def __init__(self, x):
        super().__init__([x])
        self.x = x

    def _log_unnorm(self, X, v):
        x = X[self.x.name]
        return 0.0 * x

    def _unnorm(self, X, v):
        return 1.0 + 0.0 * X[self.x.name]

    def _log_integral(self, v, ranges):
        lo, hi = ranges[self.x.name]
        return float(np.log(hi - lo))

    def _sample(self, n, rng, v):
        lo, hi = self.x.limits
        return {self.x.name: rng.uniform(lo, hi, n)}
