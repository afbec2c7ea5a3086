"""Asymptotic CLs with the q̃μ test statistic, reusing one recorded tape for every fit.

The model's NLL is recorded once; fits with the POI fixed pass ``fixed=`` to ``tape.fit`` (nothing is
recorded again), and the Asimov dataset replays the same tape on other data (``with_data``).
The conventions are pyhf's (arXiv:1007.1727 as implemented in ``pyhf.infer.hypotest`` with
``test_stat="qtilde"``, ``calc_base_dist="normal"``):

- q̃μ = 2 (NLL(μ, θ̂̂) - NLL(μ̂, θ̂)), clipped at 0, and 0 where μ̂ > μ; μ̂ keeps its lower
  bound (0 in the usual measurements), which makes qμ the q̃μ of the paper;
- the Asimov dataset is the expected data (auxiliary data included) at the conditional fit to
  the observed data with μ = 0;
- with √q̃μ,A from the Asimov data, the test statistic is √q̃μ if √q̃μ <= √q̃μ,A, else
  (q̃μ - q̃μ,A) / (2 √q̃μ,A); CLs+b = Φ(-(t + √q̃μ,A)), CLb = Φ(-t), CLs = CLs+b / CLb;
- the expected band evaluates the same at t = 2, 1, 0, -1, -2 (from -2σ to +2σ in CLs).

The fits that do not depend on the tested μ (the free fits and the Asimov dataset) are done once
per (data, model) and reused across a scan (``upper_limit``).
"""
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr

import tape

__all__ = ["HypoTestResult", "hypotest", "upper_limit", "Hypotester"]


@dataclass
class HypoTestResult:
    """CLs of one tested POI value; ``cls_expected`` runs from -2σ to +2σ (pyhf's order)."""

    poi: float
    cls: float
    clsb: float
    clb: float
    cls_expected: np.ndarray
    qmu: float
    qmu_asimov: float
    fits: dict = field(default_factory=dict, repr=False)

    def __iter__(self):
        """Unpacks like pyhf's ``hypotest(..., return_expected_set=True)``: (CLs, expected)."""
        return iter((self.cls, self.cls_expected))


def _pvalues(t, sqrt_qa):
    clsb = float(ndtr(-(t + sqrt_qa)))
    clb = float(ndtr(-t))
    return clsb / clb, clsb, clb


class Hypotester:
    """Fits shared by the hypothesis tests of one model and dataset.

    ``test(mu)`` returns a ``HypoTestResult``; the free fits to the data and to the Asimov
    dataset are computed on first use and kept.
    """

    def __init__(self, data, model, init_pars=None, par_bounds=None, fixed_params=None,
                 method="migrad"):
        cfg = model.config
        if cfg.poi_index is None:
            raise ValueError("hypotest needs a model with a parameter of interest")
        self.model, self.method = model, method
        self.poi = cfg.poi_index
        self.init = np.array(init_pars if init_pars is not None else cfg.suggested_init(),
                             dtype=np.float64)
        self.bounds = [tuple(b) for b in (par_bounds if par_bounds is not None
                                          else cfg.suggested_bounds())]
        self.fixed = np.array(fixed_params if fixed_params is not None
                              else cfg.suggested_fixed(), dtype=bool)
        self.nll = model.nll(data)
        self._free = {}
        self._asimov = None
        self._minima = {}       # id of an NLL -> [(POI, FitResult)] of its valid fits

    def _start(self, nll, poi_value):
        """(start, Hessian seed) of a fit with the POI fixed at `poi_value`: the minimum already
        found for the same data with the nearest POI, moved to `poi_value`, and the exact
        Hessian there (a scan's next point is then a few steps away, with no Hessian to
        compute before Migrad starts); else the initial values and the Hessian there."""
        start, seed = self.init.copy(), True
        done = self._minima.get(id(nll), [])
        if done:
            _, near_fit = min(done, key=lambda d: abs(d[0] - poi_value))
            near = np.array(near_fit.values)
            near[self.fixed] = self.init[self.fixed]
            near[self.poi] = poi_value
            near = np.clip(near, [lo for lo, _ in self.bounds], [hi for _, hi in self.bounds])
            with np.errstate(all="ignore"):
                if np.isfinite(nll.function(near)):
                    start = near
                    if near_fit.hessian is not None:
                        seed = near_fit.hessian
        start[self.poi] = poi_value
        return start, seed

    def _fit(self, nll, poi_value=None):
        fixed = self.fixed.copy()
        start, seed = self.init.copy(), True
        if poi_value is not None:
            start, seed = self._start(nll, poi_value)
            fixed[self.poi] = True
        # the test statistics need the minima only: the errors may come from the last exact
        # Hessian of each fit (final_hessian=False), one Hessian fewer per fit
        r = tape.fit(nll.function, start, names=nll.names, limits=self.bounds, fixed=fixed,
                     method=self.method, errordef=0.5, hessian_seed=seed, final_hessian=False)
        if r.valid:
            self._minima.setdefault(id(nll), []).append((r.values[self.poi], r))
        return r

    def _free_fit(self, which):
        if which not in self._free:
            self._free[which] = self._fit(self.nll if which == "data" else self.asimov_nll())
        return self._free[which]

    def asimov_nll(self):
        """The NLL on the Asimov dataset (expected data at the μ = 0 conditional fit)."""
        if self._asimov is None:
            bkg = self._fit(self.nll, 0.0)
            asimov = self.model.expected_data(np.array(bkg.values))
            self._asimov = (self.nll.with_data(asimov), bkg)
        return self._asimov[0]

    def qmu(self, mu, which="data"):
        nll = self.nll if which == "data" else self.asimov_nll()
        free = self._free_fit(which)
        cond = self._fit(nll, mu)
        q = max(2.0 * (cond.fval - free.fval), 0.0)
        if free.values[self.poi] > mu:
            q = 0.0
        return q, free, cond

    def test(self, mu):
        mu = float(mu)
        q, free, cond = self.qmu(mu, "data")
        qa, free_a, cond_a = self.qmu(mu, "asimov")
        sq, sqa = math.sqrt(q), math.sqrt(qa)
        if sq <= sqa:
            t = sq - sqa
        else:
            t = (q - qa) / (2.0 * sqa)
        cls, clsb, clb = _pvalues(t, sqa)
        expected = np.array([_pvalues(n, sqa)[0] for n in (2, 1, 0, -1, -2)])
        fits = {"free_fit_to_data": free, "fixed_poi_fit_to_data": cond,
                "free_fit_to_asimov": free_a, "fixed_poi_fit_to_asimov": cond_a,
                "asimov_pars": self._asimov[1]}
        return HypoTestResult(mu, cls, clsb, clb, expected, q, qa, fits)


@tape.threads.single_threaded_blas
def hypotest(poi_test, data, model, init_pars=None, par_bounds=None, fixed_params=None,
             test_stat="qtilde", return_expected_set=True, method="migrad"):
    """Asymptotic CLs of POI value `poi_test` with the q̃μ test statistic.

    Returns a ``HypoTestResult`` (``cls``, ``clsb``, ``clb``, ``cls_expected`` from -2σ to +2σ,
    ``qmu``, ``qmu_asimov``, the ``fits``); it unpacks as ``cls, cls_expected`` like pyhf's
    ``hypotest(..., return_expected_set=True)``.
    """
    if test_stat != "qtilde":
        raise ValueError(f"only test_stat='qtilde' is implemented, got {test_stat!r}")
    return Hypotester(data, model, init_pars, par_bounds, fixed_params, method).test(poi_test)


@tape.threads.single_threaded_blas
def upper_limit(data, model, scan, level=0.05, return_results=False, **kwargs):
    """Observed and expected upper limits on the POI where CLs crosses `level` (linear
    interpolation over `scan`, as pyhf's ``linear_grid_scan``).

    Returns ``(observed, expected)`` with ``expected`` the 5 limits from -2σ to +2σ, plus the
    list of ``HypoTestResult`` with ``return_results=True``. The free fits and the Asimov
    dataset are computed once for the whole scan.
    """
    scan = np.asarray(scan, dtype=np.float64).ravel()
    tester = Hypotester(data, model, **kwargs)
    results = [tester.test(mu) for mu in scan]
    obs = np.array([r.cls for r in results])
    exp = np.array([r.cls_expected for r in results])
    observed = float(np.interp(level, obs[::-1], scan[::-1]))
    expected = np.array([np.interp(level, exp[::-1, i], scan[::-1]) for i in range(5)])
    if return_results:
        return observed, expected, results
    return observed, expected
