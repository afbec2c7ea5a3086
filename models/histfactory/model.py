"""The HistFactory model: pyhf's likelihood, evaluated in numpy or recorded on the tape.

The expected yields are computed over "entry bins" (each bin of each sample defined in a channel):

    yield = (nominal + sum of histosys deltas) * prod(direct factors) * prod(normsys factors)

where the direct factors are parameters used as they are (normfactor, lumi, shapefactor, shapesys
and staterror gammas). The interpolation codes give per-parameter weights (a few hundred values);
constant sparse matrices apply them to every histosys and normsys item at once (``tape.spmv``,
dense ``matmul`` when a matrix is mostly non-zeros), the code-4 polynomials of all normsys items are
one ``tape.polyval``, and their product per sample one ``tape.scatter_prod``; the direct factors
are a few gathers (one per "level", the largest number of such factors on one bin, typically 2
to 4). The same code runs on numpy arrays (``expected_data``, ``logpdf``) and on the tape
(``nll``), so the two cannot disagree.

    logpdf = sum_bins [n log(lam) - lam - lgamma(n + 1)]
           + sum_normal [-(a - theta)^2 / (2 sigma^2) - log(sigma sqrt(2 pi))]
           + sum_poisson [a log(gamma tau) - gamma tau - lgamma(a + 1)]

exactly as pyhf (numpy backend) computes it. ``nll(data).function(pars)`` equals
``-logpdf(pars, data)`` in exact arithmetic. It is computed in a form free of cancellation: each
Poisson term as ``-n (r - 1 - log r)`` with ``r = lam / n`` (``-lam`` where n = 0) plus the
constant ``log Pois(n | n)`` (Stirling's series for large n), computed once per dataset in numpy
and entering the tape as a data array; r is formed from the parameters and data constants
(gamma * (tau / a) for shapesys), not from a rounded rate, so the value keeps about 1e-11
absolute precision where ``n log(lam / n) - (lam - n)`` had 1e-5 (tau = 1.9e11).
pyhf's formula ``n log(lam) - lam - lgamma(n + 1)`` loses the digits of ``n log(lam)`` when n is large
(a shapesys with tau = 1.9e11 in the 3L eRJR workspace leaves about 1e-3 absolute precision),
so where it does, ``logpdf`` (pyhf's formula, for comparison) and the NLL differ by pyhf's rounding
error; elsewhere they agree to about 1e-13 relative.
"""
import math

import numpy as np
from scipy.special import gammaln, xlogy

import tape
from tape import math as T
from tape.tracer import Tracer

from ..nll import NLL
from ..parameters import Parameter
from .interpolation import HISTOSYS_WEIGHTS, NORMSYS_WEIGHTS
from .modifiers import build
from .schema import InvalidSpecification, validate_model_spec

__all__ = ["Model", "ModelConfig", "HistFactoryNLL"]

DENSE_FRACTION = 0.5

DEFAULT_MODIFIER_SETTINGS = {"normsys": {"interpcode": "code4"},
                             "histosys": {"interpcode": "code4p"}}


def _take(x, idx):
    if isinstance(x, Tracer):
        return T.gather(x, idx, (len(idx),))
    return np.asarray(x)[..., idx]


def _scale(a, factor=1.0):
    """factor / a where a > 0, else 0 (the ratio rate / a is then 0 where a = 0)."""
    return np.where(a > 0, factor / np.where(a > 0, a, 1.0), 0.0)


def _log_poisson_ratio(k, ratio, rate, zero):
    """log Pois(k | rate) - log Pois(k | k), summed: -k (r - 1 - log r) with r = rate / k
    (`ratio`, computed as rate times a data constant), and -rate where k = 0 (`zero` is 1
    there, `ratio` 0).

    The usual k log(rate / k) - (rate - k) rounds rate / k and rate - k separately, each at about
    1e-16 of k: 1e-5 absolute for a shapesys auxiliary count of 1.9e11 (3L eRJR), noise that
    stalls any minimizer's last digits. From one ratio r, r - 1 is exact near r = 1 and log r
    has a relative error of 1e-16, so the error of r - 1 - log r ~ (r - 1)^2 / 2 scales with
    r - 1 there; far from r = 1 both terms keep their own relative precision.
    """
    u = ratio - (1.0 - zero)
    return tape.sum(-k * (u - T.log(ratio + zero)) - zero * rate)


def log_poisson_at_mean(a):
    """log Pois(a | a) = a log a - a - lgamma(a + 1), elementwise, without cancellation.

    For a >= 10 it is -log(2 pi a) / 2 minus Stirling's series (truncation below 1e-14); below,
    the terms are small enough to be summed directly. 0 at a = 0.
    """
    a = np.asarray(a, dtype=np.float64)
    out = np.zeros_like(a)
    small = (a > 0) & (a < 10.0)
    out[small] = xlogy(a[small], a[small]) - a[small] - gammaln(a[small] + 1.0)
    big = a >= 10.0
    x = a[big]
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv * (1.0 / 12 - inv2 * (1.0 / 360 - inv2 * (1.0 / 1260 - inv2 * (1.0 / 1680
                                                                                 - inv2 / 1188))))
    out[big] = -0.5 * np.log(2.0 * math.pi * x) - series
    return out


def _apply(matrix, x):
    """matrix @ x for a constant sparse matrix. On the tape: sparse (spmv) unless it is mostly
    non-zeros, when a dense product streams through memory faster than indexed loads."""
    if not isinstance(x, Tracer):
        return matrix @ np.asarray(x, dtype=np.float64)
    if matrix.nnz >= DENSE_FRACTION * matrix.shape[0] * matrix.shape[1]:
        return T.matmul(matrix.toarray(), x)
    return tape.spmv(matrix, x)


def _scatter(x, idx, n):
    if isinstance(x, Tracer):
        return T.scatter_add(x, idx, (n,))
    return np.bincount(idx, weights=x, minlength=n).astype(np.float64)


class ModelConfig:
    """Names, parameter sets and suggestions of a model (pyhf's ``model.config``)."""

    def __init__(self, layout, poi_name):
        L = self._layout = layout
        self.channels, self.samples, self.modifiers = L.channels, L.samples, L.modifiers
        self.channel_nbins = dict(L.channel_nbins)
        self.channel_slices = {c: slice(L.channel_offsets[c], L.channel_offsets[c] + n)
                               for c, n in L.channel_nbins.items()}
        self.par_order = list(L.par_order)
        self.par_map = {name: {"slice": L.par_slices[name], "paramset": L.paramsets[name]}
                        for name in self.par_order}
        self.parameters = sorted(self.par_order)
        self.npars = L.npars
        self.nmaindata = L.n_bins
        self.auxdata = list(L.auxdata)
        self.auxdata_order = list(L.auxdata_order)
        self.nauxdata = len(self.auxdata)
        self.modifier_settings = {"normsys": {"interpcode": L.normsys_code},
                                  "histosys": {"interpcode": L.histosys_code}}
        self.poi_name = self.poi_index = None
        if poi_name is not None:
            self.set_poi(poi_name)

    def set_poi(self, name):
        """Make `name` the parameter of interest (None: no POI)."""
        if name is None:
            self.poi_name = self.poi_index = None
            return
        if name not in self.par_map:
            raise InvalidSpecification(f"the parameter of interest {name!r} is not a parameter of "
                                       f"the model (parameters: {self.par_order[:10]}...); pass "
                                       "poi_name=None for a model without one")
        if self.param_set(name).n_parameters != 1:
            raise InvalidSpecification(f"the parameter of interest {name!r} has several "
                                       "components")
        self.poi_name = name
        self.poi_index = self.par_slice(name).start

    def par_slice(self, name):
        return self.par_map[name]["slice"]

    def param_set(self, name):
        return self.par_map[name]["paramset"]

    @property
    def par_names(self):
        out = []
        for name in self.par_order:
            ps = self.param_set(name)
            out += [name] if ps.is_scalar else [f"{name}[{i}]" for i in range(ps.n_parameters)]
        return out

    def suggested_init(self):
        return [v for name in self.par_order for v in self.param_set(name).suggested_init]

    def suggested_bounds(self):
        return [b for name in self.par_order for b in self.param_set(name).suggested_bounds]

    def suggested_fixed(self):
        return [v for name in self.par_order for v in self.param_set(name).suggested_fixed]

    def __repr__(self):
        return (f"<ModelConfig {len(self.channels)} channels, {self.nmaindata} bins, "
                f"{self.npars} parameters, poi={self.poi_name!r}>")


class Model:
    """A HistFactory model built from a model specification ({"channels", "parameters"}).

    Usually made by ``Workspace.model()``. ``modifier_settings`` chooses the interpolation codes
    as in pyhf: ``{"normsys": {"interpcode": "code1" or "code4"}, "histosys": {"interpcode":
    "code0" or "code4p"}}`` (defaults code4 and code4p).
    """

    def __init__(self, spec, poi_name="mu", modifier_settings=None, validate=True):
        if validate:
            validate_model_spec(spec)
        settings = {k: dict(v) for k, v in DEFAULT_MODIFIER_SETTINGS.items()}
        for k, v in (modifier_settings or {}).items():
            if k not in settings:
                raise ValueError(f"modifier_settings: no setting for modifier type {k!r}")
            settings[k].update(v)
        ncode, hcode = settings["normsys"]["interpcode"], settings["histosys"]["interpcode"]
        if ncode not in NORMSYS_WEIGHTS:
            raise ValueError(f"normsys interpcode {ncode!r} is not supported "
                             f"({sorted(NORMSYS_WEIGHTS)})")
        if hcode not in HISTOSYS_WEIGHTS:
            raise ValueError(f"histosys interpcode {hcode!r} is not supported "
                             f"({sorted(HISTOSYS_WEIGHTS)})")
        self.spec = spec
        self._layout = build(spec, spec.get("parameters", []), normsys_code=ncode,
                             histosys_code=hcode)
        self.config = ModelConfig(self._layout, None if poi_name == "" else poi_name)
        self._tape = None

    # -- expected data -----------------------------------------------------------------------------
    def _main(self, p):
        """Expected main counts per bin (numpy array or traced)."""
        L = self._layout
        y = L.eb_nominal
        if L.h_matrix is not None:
            wu, wd = HISTOSYS_WEIGHTS[L.histosys_code](_take(p, L.h_par))
            y = y + _apply(L.h_matrix, tape.concatenate([wu, wd, wu + wd]))
        if L.direct_levels:
            if isinstance(p, Tracer):
                pe = T.concatenate([p, np.ones(1)])
            else:
                pe = np.concatenate([np.asarray(p, dtype=np.float64), np.ones(1)])
            for idx in L.direct_levels:
                y = y * _take(pe, idx)
        if L.n_linear is not None:
            alpha = _take(p, L.n_par)
            if L.normsys_code == "code4":
                wh, wl, x = NORMSYS_WEIGHTS["code4"](alpha)
            else:
                wh, wl = NORMSYS_WEIGHTS["code1"](alpha)
            factor = tape.exp(_apply(L.n_linear, tape.concatenate([wh, wl])))
            if L.n_poly is not None:
                poly = tape.polyval(L.n_poly, x, at=L.n_col)
                factor = factor * tape.scatter_prod(poly, L.n_entry, (L.n_entries,))
            y = y * _take(factor, L.eb_entry)
        return _scatter(y, L.eb_bin, L.n_bins)

    def _pars(self, pars):
        p = np.asarray(pars, dtype=np.float64).ravel()
        if p.shape != (self.config.npars,):
            raise ValueError(f"pars has {p.size} values, the model has {self.config.npars} "
                             "parameters")
        return p

    def expected_actualdata(self, pars):
        """Expected counts of the main measurement, in ``config.channels`` order."""
        return self._main(self._pars(pars))

    def expected_auxdata(self, pars):
        """Expected auxiliary data (theta for Gaussian, gamma * tau for Poisson constraints)."""
        p = self._pars(pars)
        L = self._layout
        return p[L.aux_pidx] * L.aux_scale

    def expected_data(self, pars, include_auxdata=True):
        """Expected main counts followed (by default) by the expected auxiliary data."""
        main = self.expected_actualdata(pars)
        if not include_auxdata:
            return main
        return np.concatenate([main, self.expected_auxdata(pars)])

    # -- log-likelihood ----------------------------------------------------------------------------
    def _split(self, data):
        d = np.asarray(data, dtype=np.float64).ravel()
        n, a = self.config.nmaindata, self.config.nauxdata
        if d.size != n + a:
            raise ValueError(f"data has {d.size} values, the model expects {n} main counts + "
                             f"{a} auxiliary data = {n + a}")
        if not np.all(np.isfinite(d)):
            raise ValueError(f"data has NaN or infinite values at {np.flatnonzero(~np.isfinite(d))[:5]}")
        return d[:n], d[n:]

    def mainlogpdf(self, maindata, pars):
        lam = self.expected_actualdata(pars)
        n = np.asarray(maindata, dtype=np.float64)
        return float(np.sum(xlogy(n, lam) - lam - gammaln(n + 1.0)))

    def constraint_logpdf(self, auxdata, pars):
        L = self._layout
        p = self._pars(pars)
        a = np.asarray(auxdata, dtype=np.float64)
        out = 0.0
        if len(L.g_pos):
            z = (a[L.g_pos] - p[L.g_pidx]) / (math.sqrt(2.0) * L.g_sigma)
            out += float(np.sum(-L.g_norm - z * z))
        if len(L.p_pos):
            rate = p[L.p_pidx] * L.p_factor
            n = a[L.p_pos]
            out += float(np.sum(xlogy(n, rate) - rate - gammaln(n + 1.0)))
        return out

    def logpdf(self, pars, data):
        """log L(pars | data) with all of pyhf's constants, a float."""
        main, aux = self._split(data)
        return self.mainlogpdf(main, pars) + self.constraint_logpdf(aux, pars)

    def _tape_data(self, data):
        """The data arrays of the tape (one row each) for a dataset: counts, their inverses (0
        for 0), where they are 0, and the parameter-independent part of -logpdf."""
        L = self._layout
        main, aux = self._split(data)
        if np.any(main < 0):
            raise ValueError(f"main data must be non-negative counts, got {main[main < 0][:5]}")
        const = -float(np.sum(log_poisson_at_mean(main)))
        out = {"main": main[None, :], "main_scale": _scale(main)[None, :],
               "main_zero": (main == 0).astype(np.float64)[None, :]}
        if len(L.g_pos):
            out["gauss"] = aux[L.g_pos][None, :]
            const += float(np.sum(L.g_norm))
        if len(L.p_pos):
            a = aux[L.p_pos]
            if np.any(a < 0):
                raise ValueError("auxiliary data of Poisson constraints must be non-negative")
            out["pois"], out["pois_scale"] = a[None, :], _scale(a, L.p_factor)[None, :]
            out["pois_zero"] = (a == 0).astype(np.float64)[None, :]
            const -= float(np.sum(log_poisson_at_mean(a)))
        out["const"] = np.array([[const]])
        return out

    def _record(self, arrays):
        L = self._layout

        def fn(p, main, main_scale, main_zero, const, gauss=None, pois=None, pois_scale=None,
               pois_zero=None):
            lam = self._main(p)
            # log Pois(n | lam) - log Pois(n | n), free of the cancellation between n log(lam)
            # and lgamma(n + 1) when counts are large
            out = _log_poisson_ratio(main, lam * main_scale, lam, main_zero)
            if len(L.g_pos):
                z = (gauss - _take(p, L.g_pidx)) * (1.0 / (math.sqrt(2.0) * L.g_sigma))
                out = out - tape.sum(z * z)
            if len(L.p_pos):
                gamma = _take(p, L.p_pidx)
                # (rate / a from gamma and tau / a: not through the rounded gamma tau)
                out = out + _log_poisson_ratio(pois, gamma * pois_scale, gamma * L.p_factor,
                                               pois_zero)
            return tape.sum(const) - out

        return tape.record(fn, np.array(self.config.suggested_init()), data=arrays)

    def nll(self, data):
        """-logpdf(pars, data) recorded on the tape: a ``models.NLL`` (iminuit protocol, .fit()).

        The tape is recorded once per model; other datasets replay it (``with_data``).
        """
        arrays = self._tape_data(data)
        if self._tape is None:
            self._tape = self._record(arrays)
            function = self._tape
        else:
            function = self._tape.with_data(**arrays)
        return HistFactoryNLL(self, function, np.asarray(data, dtype=np.float64).ravel())

    def __repr__(self):
        c = self.config
        return f"<histfactory.Model {len(c.channels)} channels, {c.nmaindata} bins, {c.npars} parameters>"


class HistFactoryNLL(NLL):
    """-log L of a HistFactory model on one dataset, over all ``config.npars`` parameters.

    ``function`` takes the full parameter vector in pyhf's order (fixed parameters included);
    ``fit()`` keeps the measurement's fixed parameters (``config.suggested_fixed()``) fixed.
    """

    def __init__(self, model, function, data):
        self.model = model
        self.data = data
        self.function = function
        cfg = model.config
        fixed = cfg.suggested_fixed()
        params = []
        for name, v, b, fx in zip(cfg.par_names, cfg.suggested_init(), cfg.suggested_bounds(),
                                  fixed):
            try:
                params.append(Parameter(name, v, limits=b, fixed=fx))
            except ValueError as e:
                raise InvalidSpecification(f"parameter {name!r}: {e}") from None
        self.all_parameters = self.parameters = params
        self.fixed = np.array(fixed, dtype=bool)

    @property
    def limits(self):
        return [p.limits for p in self.parameters]

    def _fixed(self, fixed):
        if fixed is None:
            return self.fixed.copy()
        fixed = list(fixed)
        if all(isinstance(v, str) for v in fixed):
            out = self.fixed.copy()
            for v in fixed:
                out[self.names.index(v)] = True
            return out
        return np.array([bool(v) for v in fixed])

    def fit(self, start=None, *, method="migrad", hessian_seed=True, fixed=None, **kwargs):
        """Minimize; `fixed` None keeps the suggested fixed parameters, a list of names adds to
        them, a list of flags replaces them. Returns a ``tape.FitResult``."""
        start = self.start if start is None else np.asarray(start, dtype=np.float64)
        return tape.fit(self.function, start, names=self.names, limits=self.limits,
                        fixed=self._fixed(fixed), method=method, hessian_seed=hessian_seed,
                        errordef=self.errordef, **kwargs)

    def profile(self, parameter, values, *, method="migrad", progress=None, fixed=None):
        name = getattr(parameter, "name", parameter)
        return tape.profile(self.function, name, values, start=self.start, names=self.names,
                            limits=self.limits, fixed=self._fixed(fixed), method=method,
                            errordef=self.errordef, progress=progress)

    def with_data(self, data):
        """The same tape replayed on another dataset (main counts + auxiliary data)."""
        arrays = self.model._tape_data(data)
        return HistFactoryNLL(self.model, self.function.with_data(**arrays),
                              np.asarray(data, dtype=np.float64).ravel())

    def __repr__(self):
        return f"<HistFactoryNLL {len(self.parameters)} parameters ({int(self.fixed.sum())} fixed)>"
