"""Gaussian(x, mean, sigma), normalized over a finite range with erf/erfc chosen for accuracy."""
import math

import numpy as np
from scipy import special

import tape

from .base import Pdf

__all__ = ["Gaussian", "log_gauss_integral"]

_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_PI_2 = 0.5 * math.log(math.pi / 2.0)


def log_gauss_integral(mean, sigma, lo, hi):
    """log of the integral of exp(-((x - mean)/sigma)^2 / 2) over [lo, hi].

    The difference of erf values loses all precision when both ends sit in the same tail; there
    the difference of erfc values of the mirrored arguments is used instead (selected with
    ``tape.where``, both branches finite).
    """
    a = (lo - mean) / (sigma * _SQRT2)
    b = (hi - mean) / (sigma * _SQRT2)
    upper = tape.erfc(a) - tape.erfc(b)           # accurate when a > 0 (upper tail)
    lower = tape.erfc(-b) - tape.erfc(-a)         # accurate when b < 0 (lower tail)
    central = tape.erf(b) - tape.erf(a)
    diff = tape.where(a > 0.0, upper, tape.where(b < 0.0, lower, central))
    return tape.log(sigma) + _LOG_SQRT_PI_2 + tape.log(diff)


class Gaussian(Pdf):
    """The normal density of `x` with `mean` and `sigma` (RooGaussian's argument order).

    Examples
    --------
    >>> import numpy as np
    >>> from models import Observable, Parameter, Gaussian
    >>> x = Observable("x", (-5.0, 5.0))
    >>> g = Gaussian(x, Parameter("mu", 0.0), Parameter("sigma", 1.0))
    >>> round(float(g.pdf(np.array([0.0]))[0]), 5)
    0.39894
    """

    def __init__(self, x, mean, sigma):
        super().__init__([x], mean=mean, sigma=sigma)
        self.x = x

    def _log_unnorm(self, X, v):
        z = (X[self.x.name] - v("mean")) / v("sigma")
        return -0.5 * tape.square(z)

    def _log_integral(self, v, ranges):
        lo, hi = ranges[self.x.name]
        return log_gauss_integral(v("mean"), v("sigma"), lo, hi)

    def _sample(self, n, rng, v):
        mean, sigma = float(v("mean")), float(v("sigma"))
        lo, hi = self.x.limits
        a, b = (lo - mean) / sigma, (hi - mean) / sigma
        # inverse CDF of the truncated normal, in the tail where the CDF keeps its precision:
        # above the mean through the survival function (mirror the range), below through ndtr
        mirror = a + b > 0
        if mirror:
            a, b = -b, -a
        u = rng.uniform(special.ndtr(a), special.ndtr(b), n)
        z = np.clip(special.ndtri(u), a, b)
        if mirror:
            z = -z
        return {self.x.name: np.clip(mean + sigma * z, lo, hi)}
