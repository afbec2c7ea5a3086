"""Chebychev and Polynomial densities (RooChebychev, RooPolynomial conventions).

Both can go negative for some coefficients. Their log density is floored at ``log(TINY)``
there: the NLL becomes large but finite, so Minuit steps back instead of seeing a NaN.
"""
import numpy as np

import tape

from .base import Pdf, accept_reject

__all__ = ["Chebychev", "Polynomial", "TINY"]

TINY = 1e-300


def _floored_log(f):
    return tape.log(tape.maximum(f, TINY))


class Chebychev(Pdf):
    """1 + sum_k a_k T_{k+1}(t), with t mapping the observable's full range onto [-1, 1].

    Examples
    --------
    >>> from models import Observable, Chebychev
    >>> c = Chebychev(Observable("x", (0.0, 10.0)), [0.5, 0.2])
    >>> round(c.integral(), 12)
    1.0
    """

    def __init__(self, x, coefficients):
        coefficients = list(coefficients)
        super().__init__([x], coefficients=coefficients)
        self.x = x
        self.order = len(coefficients)

    def _t(self, x):
        lo, hi = self.x.limits
        return (2.0 * x - (hi + lo)) / (hi - lo)

    def _unnorm(self, X, v):
        t = self._t(X[self.x.name])
        a = v("coefficients")
        total = 1.0
        t_prev, t_cur = 1.0, t
        for k, ak in enumerate(a):
            if k > 0:
                t_prev, t_cur = t_cur, 2.0 * t * t_cur - t_prev
            total = total + ak * t_cur
        return total

    def _log_unnorm(self, X, v):
        return _floored_log(self._unnorm(X, v))

    def _sample(self, n, rng, v):
        # |T_k| <= 1 on [-1, 1]: 1 + sum |a_k| bounds the density, no grid search needed
        bound = 1.0 + sum(abs(float(a)) for a in v("coefficients"))
        return accept_reject(self, n, rng, v, fmax=bound)

    def _log_integral(self, v, ranges):
        lo, hi = ranges[self.x.name]
        full_lo, full_hi = self.x.limits
        ta, tb = self._t(lo), self._t(hi)

        def antiderivatives(t):
            # I_0 = t, I_1 = t^2/2, I_n = T_{n+1}/(2(n+1)) - T_{n-1}/(2(n-1))
            T = [1.0, t]
            for _ in range(self.order + 1):
                T.append(2.0 * t * T[-1] - T[-2])
            out = [t, t * t / 2.0]
            for n in range(2, self.order + 1):
                out.append(T[n + 1] / (2.0 * (n + 1)) - T[n - 1] / (2.0 * (n - 1)))
            return out

        Ia, Ib = antiderivatives(ta), antiderivatives(tb)
        a = v("coefficients")
        total = Ib[0] - Ia[0]
        for k, ak in enumerate(a):
            total = total + ak * (Ib[k + 1] - Ia[k + 1])
        return _floored_log(total * (0.5 * (full_hi - full_lo)))


class Polynomial(Pdf):
    """1 + sum_k c_k x^(k+1) (RooPolynomial with its default lowest order 1).

    Examples
    --------
    >>> from models import Observable, Polynomial
    >>> round(Polynomial(Observable("x", (0.0, 2.0)), [0.5]).integral(), 12)
    1.0
    """

    def __init__(self, x, coefficients):
        coefficients = list(coefficients)
        super().__init__([x], coefficients=coefficients)
        self.x = x

    def _unnorm(self, X, v):
        x = X[self.x.name]
        total, power = 1.0, 1.0
        for c in v("coefficients"):
            power = power * x
            total = total + c * power
        return total

    def _log_unnorm(self, X, v):
        return _floored_log(self._unnorm(X, v))

    def _log_integral(self, v, ranges):
        lo, hi = ranges[self.x.name]
        total = hi - lo
        for k, c in enumerate(v("coefficients")):
            total = total + c * ((hi ** (k + 2) - lo ** (k + 2)) / (k + 2))
        return _floored_log(total)
