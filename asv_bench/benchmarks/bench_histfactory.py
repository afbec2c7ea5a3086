"""HistFactory: the three published ATLAS workspaces in ../shared/data/histfactory.

Targets, single thread: NLL value <= 0.01x pyhf's numpy-backend logpdf on the 623-parameter
workspace and <= 0.05x on the other two; value_and_grad <= 3x value; the 623 x 623 Hessian
<= 0.1 s; the best fit of the 623-parameter workspace valid in <= 1 s.
"""
import json
import os
import warnings

import numpy as np

import tape

from .bench_tape import median_seconds

tape.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data", "histfactory"))
WORKSPACES = {
    "3LeRJR_70": ("atlas_susy_2018_06_3LeRJR_BkgOnly.json",
                  "atlas_susy_2018_06_3LeRJR_patch.ERJR_350p0_150p0.json"),
    "1Lbb_126": ("atlas_susy_2019_08_1Lbb_BkgOnly.json",
                 "atlas_susy_2019_08_1Lbb_patch_C1N2_Wh_hbb_550_200.json"),
    "3Lresonance_623": ("atlas_3Lresonance_BkgOnly.json", None),
}
_STATE = {}


def _load(name):
    if name not in _STATE:
        from models.histfactory import Workspace
        ws_file, patch_file = WORKSPACES[name]
        spec = json.load(open(os.path.join(DATA, ws_file)))
        patches = [json.load(open(os.path.join(DATA, patch_file)))] if patch_file else []
        ws = Workspace(spec)
        model = ws.model(patches=patches) if patches else ws.model(poi_name=None)
        data = ws.data(model)
        nll = model.nll(data)
        p = np.array(model.config.suggested_init(), dtype=np.float64)
        pyhf_eval = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import pyhf
                pws = pyhf.Workspace(spec)
                pm = pws.model(patches=patches) if patches else pws.model(poi_name=None)
                pd = pws.data(pm)
                pp = np.array(pm.config.suggested_init(), dtype=np.float64)
                pyhf_eval = lambda: pm.logpdf(pp, pd)   # noqa: E731
        except ImportError:
            pass
        _STATE[name] = (nll, p, pyhf_eval)
    return _STATE[name]


class Workspaces:
    params = list(WORKSPACES)
    param_names = ["workspace"]
    timeout = 600

    def setup(self, name):
        if not os.path.isdir(DATA):
            raise NotImplementedError("../shared/data/histfactory is not there")
        self.nll, self.p, self.pyhf = _load(name)
        self.nll.function(self.p)
        self.nll.function.value_and_grad(self.p)
        self.nll.function.hessian(self.p)   # its hvp program built once, then timed

    def time_value(self, name):
        self.nll.function(self.p)

    def time_value_and_grad(self, name):
        self.nll.function.value_and_grad(self.p)

    def track_value_over_pyhf(self, name):
        if self.pyhf is None:
            raise NotImplementedError("pyhf is not installed")
        ours, theirs = median_seconds(lambda: self.nll.function(self.p), self.pyhf, repeat=9)
        return ours / theirs

    track_value_over_pyhf.unit = "ratio"

    def track_value_and_grad_over_value(self, name):
        g, v = median_seconds(lambda: self.nll.function.value_and_grad(self.p),
                              lambda: self.nll.function(self.p), repeat=9)
        return g / v

    track_value_and_grad_over_value.unit = "ratio"

    def time_hessian(self, name):
        self.nll.function.hessian(self.p)

    def time_hessian_dense(self, name):
        """The Hessian as one product per column (the loop before sparse Hessians)."""
        self.nll.function.hessian(self.p, method="hvp")

    def track_hessian_products(self, name):
        """Hessian-vector products per Hessian: the sparse plan's, else one per parameter."""
        f = self.nll.function
        plan = f._sparse_plan()
        from tape.function import SPARSE_MAX_FRACTION
        if plan is None or plan.products > SPARSE_MAX_FRACTION * f.n_params:
            return f.n_params
        return plan.products

    track_hessian_products.unit = "products"

    def time_fit(self, name):
        self.nll.fit()

    def time_fit_newton(self, name):
        """Trust-region Newton (its boundary steps from Cholesky factorizations on many
        parameters, eigen-decompositions only for indefinite models)."""
        self.nll.fit(method="newton")

    def track_first_fit_seconds(self, name):
        """Wall time of a user's first fit: recording the NLL, building its programs, fitting."""
        import time
        from models.histfactory import Workspace
        ws_file, patch_file = WORKSPACES[name]
        ws = Workspace(json.load(open(os.path.join(DATA, ws_file))))
        patches = [json.load(open(os.path.join(DATA, patch_file)))] if patch_file else []
        model = ws.model(patches=patches) if patches else ws.model(poi_name=None)
        data = ws.data(model)
        t0 = time.perf_counter()
        model.nll(data).fit()
        return time.perf_counter() - t0

    track_first_fit_seconds.unit = "seconds"


class LimitScan:
    """Observed and expected CLs upper limits of the 1Lbb signal over 21 POI values: 2 free
    fits, the Asimov dataset, 42 conditional fits (each from the nearest minimum found, seeded
    with its Hessian)."""

    timeout = 600

    def setup(self):
        if not os.path.isdir(DATA):
            raise NotImplementedError("../shared/data/histfactory is not there")
        from models.histfactory import Workspace
        ws_file, patch_file = WORKSPACES["1Lbb_126"]
        ws = Workspace(json.load(open(os.path.join(DATA, ws_file))))
        self.model = ws.model(patches=[json.load(open(os.path.join(DATA, patch_file)))])
        self.data = ws.data(self.model)
        self.scan = np.linspace(0.0, 5.0, 21)
        self._limit()          # the tapes are recorded and lowered once

    def _limit(self):
        from models.histfactory import upper_limit
        return upper_limit(self.data, self.model, self.scan, return_results=True)

    def time_upper_limit(self):
        self._limit()

    def _fits(self):
        """Each fit once (the free fits and the Asimov fit are shared by every point)."""
        return list({id(f): f for r in self._limit()[2] for f in r.fits.values()}.values())

    def track_hessians(self):
        return sum(f.nhess for f in self._fits())

    def track_invalid_fits(self):
        return sum(not f.valid for f in self._fits())
