"""Gaussian(x, mean, sigma), normalized over a finite range with erf/erfc chosen for accuracy."""
import math

import numpy as np
from scipy import special

import tape

from .base import Pdf

__all__ = ["Gaussian", "log_gauss_integral", "log_erfc"]

_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_PI_2 = 0.5 * math.log(math.pi / 2.0)
_LOG2 = math.log(2.0)


def log_erfc(z):
    """log erfc(z), also far in the tail where erfc underflows (past z = 26.6): through scipy's
    log of the normal CDF, log erfc(z) = log 2 + log_ndtr(-z sqrt 2)."""
    return _LOG2 + tape.log_ndtr(z * -_SQRT2)


def _log_tail_difference(a, b):
    """log(erfc(a) - erfc(b)) for b >= a, precise however far both are in the upper tail."""
    la, lb = log_erfc(a), log_erfc(b)
    return la + tape.log(-tape.expm1(lb - la))


def log_gauss_integral(mean, sigma, lo, hi):
    """log of the integral of exp(-((x - mean)/sigma)^2 / 2) over [lo, hi].

    The difference of erf values loses all precision when both ends sit in the same tail; there
    the difference of erfc values of the mirrored arguments is used instead, in log space (a
    bin 40 standard deviations out still has a finite log integral, and finite derivatives).
    The branches are selected with ``tape.where``, each on arguments for which it is finite.
    """
    a = (lo - mean) / (sigma * _SQRT2)
    b = (hi - mean) / (sigma * _SQRT2)
    upper_tail = a > 0.0
    lower_tail = b < 0.0
    # one tail computation: the upper tail on (a, b), the lower one mirrored on (-b, -a), and on
    # (0, 1) in the central case, where it is not used (finite values and derivatives: a where()
    # passes no NaN from the branch it does not take)
    near = tape.where(upper_tail, a, tape.where(lower_tail, -b, 0.0))
    far = tape.where(upper_tail, b, tape.where(lower_tail, -a, 1.0))
    tail = _log_tail_difference(near, far)
    central = tape.log(tape.where(upper_tail, 1.0,
                                  tape.where(lower_tail, 1.0, tape.erf(b) - tape.erf(a))))
    log_diff = tape.where(upper_tail, tail, tape.where(lower_tail, tail, central))
    return tape.log(sigma) + _LOG_SQRT_PI_2 + log_diff


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
