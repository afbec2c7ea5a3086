"""ArgusBG(x, m0, c, p=0.5): the ARGUS background shape (RooArgusBG).

    f(x) = x (1 - (x/m0)^2)^p exp(c (1 - (x/m0)^2))   for x < m0, 0 above.

Above the endpoint (and at it) the log density is floored at ``log(TINY)``: events there give a
large but finite NLL with a finite gradient. The normalization substitutes u = 1 - (x/m0)^2 =
w^4, which turns the integral into 2 m0^2 * integral of w^(4p+3) exp(c w^4) dw: the endpoint
singularity of (1 - (x/m0)^2)^p becomes a zero of high order, and fixed-order Gauss-Legendre
quadrature on it (nodes constant, recorded on the tape, so differentiated exactly) is accurate
to rounding for the usual p (0.5, 1) and to ~1e-13 for any p >= 0.
"""
import math

import numpy as np

import tape

from .base import GL_ORDER, Pdf

__all__ = ["ArgusBG"]

TINY = 1e-300
LOG_TINY = math.log(TINY)

_T, _W = np.polynomial.legendre.leggauss(GL_ORDER)
_T01, _HALF_W = 0.5 * (_T + 1.0), 0.5 * _W      # nodes on [0, 1] and their weights


def _one_minus_r2(x, m0):
    r = x / m0
    return (1.0 - r) * (1.0 + r)        # 1 - (x/m0)^2 without cancellation near the endpoint


class ArgusBG(Pdf):
    """The ARGUS function of `x` with endpoint `m0`, curvature `c` and power `p` (RooArgusBG).

    The observable's range must lie at x >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> from models import Observable, ArgusBG
    >>> mes = Observable("mes", (5.20, 5.30))
    >>> a = ArgusBG(mes, 5.29, -20.0)
    >>> round(a.integral(), 12)
    1.0
    >>> float(a.log_prob(np.array([5.295]))[0]) < -600      # above the endpoint
    True
    """

    def __init__(self, x, m0, c, p=0.5):
        if x.limits[0] < 0.0:
            raise ValueError(f"ArgusBG needs an observable range at x >= 0, got {x.limits}")
        super().__init__([x], m0=m0, c=c, p=p)
        self.x = x

    def _log_unnorm(self, X, v):
        x = X[self.x.name]
        u = _one_minus_r2(x, v("m0"))
        ok = tape.minimum(u, x) > 0.0                    # below the endpoint, at x > 0
        u_safe = tape.where(ok, u, 1.0)                  # double where: no log(<= 0) anywhere
        x_safe = tape.where(ok, x, 1.0)
        val = tape.log(x_safe) + v("p") * tape.log(u_safe) + v("c") * u_safe
        return tape.maximum(tape.where(ok, val, LOG_TINY), LOG_TINY)

    def _log_integral(self, v, ranges):
        lo, hi = ranges[self.x.name]
        m0, c, p = v("m0"), v("c"), v("p")

        def w_of(x):
            u = _one_minus_r2(x, m0)
            pos = u > 0.0
            return tape.where(pos, tape.sqrt(tape.sqrt(tape.where(pos, u, 1.0))), 0.0)

        w_lo, w_hi = w_of(hi), w_of(lo)                  # w decreases with x
        array_valued = isinstance(lo, tape.Tracer) or np.ndim(lo) > 0
        if array_valued:                                 # one integral per bin
            w_lo, w_hi = tape.reshape(w_lo, (-1, 1)), tape.reshape(w_hi, (-1, 1))
        # a range entirely above the endpoint (a bin of a binned fit) holds no probability: its
        # log integral is floored at LOG_TINY, as the density is (double where: no log(0))
        ok = w_hi > w_lo
        width = tape.where(ok, w_hi - w_lo, 1.0)
        w = w_lo + width * _T01
        terms = (4.0 * p + 3.0) * tape.log(w) + c * tape.square(tape.square(w)) \
            + tape.log(width * _HALF_W)
        if array_valued:
            total = tape.reshape(tape.logsumexp(terms, axis=1), (-1,))
            ok = tape.reshape(ok, (-1,))
        else:
            total = tape.logsumexp(terms)
        return tape.where(ok, math.log(2.0) + 2.0 * tape.log(tape.abs(m0)) + total, LOG_TINY)
