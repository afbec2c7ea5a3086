"""Fits of the tutorial model: (a) Migrad with a numerical gradient, (b) Migrad with the tape
gradient, (c) Migrad seeded with the exact Hessian, (d) trust-region Newton; and a toy study
(100 toys of 2000 events, one recorded tape replayed with_data)."""
import numpy as np
from iminuit import Minuit

import tape
from models import UnbinnedNLL
from models.tutorial_model import build

tape.set_num_threads(1)
_STATE = {}
METHODS = {"b_migrad_tape_gradient": dict(hessian_seed=False),
           "c_migrad_hessian_seed": dict(),
           "d_newton": dict(method="newton")}


def _nll(n):
    if n not in _STATE:
        model, x, params = build()
        nll = UnbinnedNLL(model, model.sample(n, np.random.default_rng(0)))
        start = nll.start * np.array([1.05 if name != "mu" else 1.01 for name in nll.names])
        start = np.minimum(start, [p.limits[1] for p in nll.parameters])
        _STATE[n] = (nll, start)
    return _STATE[n]


def _numeric(nll, start):
    f = nll.function
    m = Minuit(lambda x: f(x), start, name=nll.names)
    m.errordef = 0.5
    m.limits = [p.limits for p in nll.parameters]
    m.migrad()
    m.hesse()
    return m


class Fit:
    """time_fit and call counts of the four fitting methods at N = 1e5 and 1e6."""

    params = ([10**5, 10**6], ["a_migrad_numerical_gradient"] + list(METHODS))
    param_names = ["n_events", "method"]
    timeout = 600

    def setup(self, n, method):
        self.nll, self.start = _nll(n)
        self.nll(self.start)
        self.nll.value_and_grad(self.start)
        self.nll.function.hessian(self.start)   # its programs are built once, not per fit

    def _run(self, method):
        if method == "a_migrad_numerical_gradient":
            return _numeric(self.nll, self.start)
        return self.nll.fit(self.start, **METHODS[method])

    def time_fit(self, n, method):
        self._run(method)

    def track_nfcn(self, n, method):
        return self._run(method).nfcn

    def track_ngrad(self, n, method):
        r = self._run(method)
        return getattr(r, "ngrad", 0)

    def track_nhess(self, n, method):
        r = self._run(method)
        return getattr(r, "nhess", 0)

    def track_calls(self, n, method):
        """Value plus value-and-gradient evaluations (issue 6: at most 60 for (c))."""
        r = self._run(method)
        return r.nfcn + getattr(r, "ngrad", 0)


class ToyStudy:
    """100 toys of 2000 events: sample, replay one tape with_data, Hessian-seeded Migrad."""

    timeout = 600

    def setup(self):
        self.nll, _ = _nll(2000)
        self.nll.fit()      # the gradient and Hessian tapes are lowered once, before the study

    def time_toys(self):
        self.nll.toys(100, np.random.default_rng(5))

    def track_valid_fraction(self):
        return float(np.mean([r.valid for r in self.nll.toys(100, np.random.default_rng(5))]))


class ProfileScan:
    """A 21-point profile of mu (2.5 sigma each way) at N = 1e5: each point starts at its
    neighbour's minimum, seeded with the exact Hessian there."""

    params = ["migrad", "newton"]
    param_names = ["method"]
    timeout = 600

    def setup(self, method):
        self.nll, _ = _nll(10**5)
        best = self.nll.fit()
        c, e = best.values["mu"], best.errors["mu"]
        self.values = np.linspace(c - 2.5 * e, c + 2.5 * e, 21)
        self.nll.profile("mu", self.values[:3], method=method)     # programs built once

    def _scan(self, method):
        return self.nll.profile("mu", self.values, method=method)

    def time_profile(self, method):
        self._scan(method)

    def track_hessians(self, method):
        return sum(r.nhess for r in self._scan(method).fits)

    def track_calls(self, method):
        return sum(r.nfcn + r.ngrad for r in self._scan(method).fits)
