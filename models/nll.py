"""Negative log-likelihoods recorded on the tape, usable directly as iminuit cost functions.

What to use when
----------------
- ``UnbinnedNLL(pdf, data)``: one event per row; ``weights=`` for weighted events,
  ``extended=True`` for a SumPdf with yields (adds the Poisson term of the event count),
  ``constraints=`` for external measurements of parameters.
- ``BinnedNLL(pdf, histogram)``: Poisson likelihood of bin counts with exact bin integrals of the
  pdf; takes ``(counts, edges)`` as from ``np.histogram``, or a ``boost_histogram``/``hist``.
- ``SimultaneousNLL({category: nll, ...})``: the sum of several NLLs that share parameters by name.

Every NLL has ``errordef = 0.5``, parameter names, ``grad``/``hessian`` (exact, from the tape), so
``iminuit.Minuit(nll, nll.start)`` uses them by itself; ``.function`` is the recorded
``tape.Function`` and ``.fit()`` runs ``tape.fit`` (Hessian-seeded Migrad or Newton). Fixed
parameters enter the tape as constants.
"""
import numpy as np

import tape

from .parameters import Parameter
from .pdfs.base import as_data

__all__ = ["NLL", "UnbinnedNLL", "BinnedNLL", "SimultaneousNLL", "GaussianConstraint",
           "PoissonConstraint"]


class GaussianConstraint:
    """An external Gaussian measurement of a parameter: adds ((p - mean) / sigma)^2 / 2."""

    def __init__(self, parameter, mean, sigma):
        if not isinstance(parameter, Parameter):
            raise TypeError("a constraint needs a Parameter")
        if not sigma > 0:
            raise ValueError(f"constraint on {parameter.name!r}: sigma must be positive")
        self.parameter, self.mean, self.sigma = parameter, float(mean), float(sigma)

    def nll(self, value):
        return 0.5 * tape.square((value - self.mean) / self.sigma)


class PoissonConstraint:
    """An auxiliary Poisson count `observed` with mean `scale * p`: adds mu - n log mu."""

    def __init__(self, parameter, observed, scale=1.0):
        if not isinstance(parameter, Parameter):
            raise TypeError("a constraint needs a Parameter")
        self.parameter, self.observed, self.scale = parameter, float(observed), float(scale)

    def nll(self, value):
        mu = self.scale * value
        return mu - tape.xlogy(self.observed, mu)


def _unique_parameters(params):
    out, names = [], {}
    for p in params:
        if p.name in names:
            if names[p.name] is not p:
                raise ValueError(f"two different parameters are named {p.name!r}")
            continue
        names[p.name] = p
        out.append(p)
    return out


class NLL:
    """The iminuit cost-function protocol over a recorded ``tape.Function``."""

    errordef = 0.5
    has_grad = True

    @property
    def has_hessian(self):
        """Whether iminuit may use ``hessian`` by itself: not where it misreads user Hessians
        with fixed parameters (iminuit 2.33); ``tape.fit`` always uses it, correctly."""
        from tape.fit import hessian_layout
        return hessian_layout() == "full"

    def _setup(self, all_params, record):
        self.all_parameters = _unique_parameters(all_params)
        self.parameters = [p for p in self.all_parameters if not p.fixed]
        self.function = record(self.parameters)

    # -- iminuit protocol -------------------------------------------------------------------------
    @property
    def _parameters(self):
        return {p.name: p.limits for p in self.parameters}

    @property
    def names(self):
        return [p.name for p in self.parameters]

    @property
    def start(self):
        """The free parameters' start values, in order."""
        return np.array([p.value for p in self.parameters])

    @property
    def ndata(self):
        return self.function.n_events

    def _vector(self, args):
        if len(args) == 1 and np.ndim(args[0]) == 1:
            return np.asarray(args[0], dtype=np.float64)
        return np.array(args, dtype=np.float64)

    def __call__(self, *args):
        return self.function(self._vector(args))

    def grad(self, *args):
        """Exact gradient (reverse mode on the tape)."""
        return self.function.grad(self._vector(args))

    def hessian(self, *args):
        """Exact Hessian (forward-over-reverse on the tape)."""
        return self.function.hessian(self._vector(args))

    def value_and_grad(self, *args):
        return self.function.value_and_grad(self._vector(args))

    # -- fitting ----------------------------------------------------------------------------------
    def fit(self, start=None, *, method="migrad", hessian_seed=True, fixed=None, **kwargs):
        """Minimize with ``tape.fit``: Hessian-seeded Migrad (or ``method="newton"``), errors
        from the exact Hessian; returns a ``tape.FitResult``."""
        start = self.start if start is None else np.asarray(start, dtype=np.float64)
        return tape.fit(self.function, start, names=self.names,
                        limits=[p.limits for p in self.parameters], fixed=fixed, method=method,
                        hessian_seed=hessian_seed, errordef=self.errordef, **kwargs)

    def profile(self, parameter, values, *, method="migrad", progress=None):
        """Profile-likelihood scan of `parameter` (a name or Parameter) over `values`."""
        name = getattr(parameter, "name", parameter)
        return tape.profile(self.function, name, values, start=self.start, names=self.names,
                            limits=[p.limits for p in self.parameters], method=method,
                            errordef=self.errordef, progress=progress)

    def __repr__(self):
        return f"<{type(self).__name__} {len(self.parameters)} free parameters, " \
               f"{self.function.n_events} events>"


def _check_range(pdf, X, drop_outside):
    """Events outside the observables' ranges: an error naming how many and where, or a mask."""
    keep = np.ones(len(next(iter(X.values()))), dtype=bool)
    for o in pdf.observables:
        x = X[o.name]
        lo, hi = o.limits
        out = (x < lo) | (x > hi)
        if out.any() and not drop_outside:
            idx = np.flatnonzero(out)
            raise ValueError(
                f"{idx.size} events of observable {o.name!r} are outside its range [{lo}, {hi}] "
                f"(first at event {idx[0]}: {float(x[idx[0]])!r}; below: {int((x < lo).sum())}, above: "
                f"{int((x > hi).sum())}). Pass drop_outside=True to drop them.")
        keep &= ~out
    return keep


class UnbinnedNLL(NLL):
    """-sum_i w_i log p(x_i) (+ the extended term, + constraints), recorded once.

    Parameters
    ----------
    pdf : models Pdf
    data : array or mapping of observable name to array
    weights : array, optional
        Per-event weights.
    extended : bool
        Add nu - n log nu with nu the pdf's expected events (a SumPdf with yields).
    constraints : sequence of GaussianConstraint / PoissonConstraint
    drop_outside : bool
        Drop events outside the observables' ranges instead of raising.

    Examples
    --------
    >>> import numpy as np
    >>> from models import Observable, Parameter, Gaussian, UnbinnedNLL
    >>> x = Observable("x", (-5.0, 5.0))
    >>> mu, sigma = Parameter("mu", 0.1), Parameter("sigma", 1.2, limits=(0.1, 5))
    >>> g = Gaussian(x, mu, sigma)
    >>> nll = UnbinnedNLL(g, g.sample(1000, np.random.default_rng(1)))
    >>> r = nll.fit()
    >>> r.valid
    True
    """

    def __init__(self, pdf, data, weights=None, extended=False, constraints=(), *,
                 drop_outside=False, chunk_size=None, memory_limit=None):
        X = {k: np.asarray(v, dtype=np.float64) for k, v in as_data(pdf, data).items()}
        n = {len(v) for v in X.values()}
        if len(n) != 1:
            raise ValueError(f"observables have different numbers of events: "
                             f"{ {k: len(v) for k, v in X.items()} }")
        for k, v in X.items():
            if not np.all(np.isfinite(v)):
                raise tape.DataError(f"data of observable {k!r} has NaN or inf at event "
                                     f"{int(np.flatnonzero(~np.isfinite(v))[0])}")
        keep = _check_range(pdf, X, drop_outside)
        if not keep.all():
            X = {k: v[keep] for k, v in X.items()}
        data = {f"obs_{k}": v for k, v in X.items()}
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != keep.shape:
                raise ValueError(f"weights have shape {w.shape}, data has {keep.size} events")
            data["weights"] = w[keep]
        if extended and not getattr(pdf, "extended", False):
            raise ValueError("extended=True needs a pdf with yields (SumPdf(..., yields=...))")
        self.pdf, self.extended, self.constraints = pdf, bool(extended), tuple(constraints)
        names = [o.name for o in pdf.observables]
        cons = [c.parameter for c in self.constraints]

        def record(free):
            def fn(p, **d):
                values = {q: p[i] for i, q in enumerate(free)}
                lp = pdf._log_prob({k: d[f"obs_{k}"] for k in names}, values)
                w = d.get("weights")
                out = -tape.sum(lp * w if w is not None else lp)
                if self.extended:
                    nu = pdf.expected_events(values)
                    n_obs = tape.sum(w) if w is not None else tape.n_events(lp)
                    out = out + nu - n_obs * tape.log(nu)
                for c in self.constraints:
                    out = out + c.nll(values.get(c.parameter, c.parameter.value))
                return out
            return tape.record(fn, np.array([q.value for q in free]), data,
                               chunk_size=chunk_size, memory_limit=memory_limit)

        self._setup(list(pdf.parameters) + cons, record)
        self._data_names = names

    @tape.threads.single_threaded_blas
    def toys(self, n_toys, rng=None, *, truth=None, n_events=None, method="migrad",
             progress=None):
        """Fit `n_toys` samples of the pdf at `truth` (default: the start values).

        Every toy replays the one recorded tape on new events (``with_data``): nothing is
        recorded again. Returns the list of FitResults (the toy's events are not kept).

        >>> import numpy as np
        >>> from models import Observable, Parameter, Gaussian, UnbinnedNLL
        >>> g = Gaussian(Observable("x", (-5, 5)), Parameter("mu", 0.0), 1.0)
        >>> nll = UnbinnedNLL(g, g.sample(500, 1))
        >>> results = nll.toys(5, np.random.default_rng(2))
        >>> all(r.valid for r in results)
        True
        """
        if self.function.n_events == 0 and n_events is None:
            raise ValueError("toys need n_events")
        from tape.profile import _Progress
        rng = np.random.default_rng(rng)
        truth = self.start if truth is None else np.asarray(truth, dtype=np.float64)
        values = {p: v for p, v in zip(self.parameters, truth)}
        n = int(n_events if n_events is not None else self.function.n_events)
        limits = [p.limits for p in self.parameters]
        bar = _Progress(n_toys, "toys", progress if progress is not None else False)
        out = []
        f = None
        for _ in range(int(n_toys)):
            k = rng.poisson(n) if self.extended else n
            sample = self.pdf.sample(k, rng, values)
            sample = sample if isinstance(sample, dict) else {self._data_names[0]: sample}
            data = {f"obs_{name}": sample[name] for name in self._data_names}
            if "weights" in self.function.data:
                data["weights"] = np.ones(k)
            # one private copy of the tape, rebound to each toy's events: nothing is recorded,
            # lowered or allocated again
            f = self.function.with_data(**data) if f is None else f._rebind(**data)
            out.append(tape.fit(f, truth, names=self.names, limits=limits, method=method,
                                errordef=self.errordef))
            bar.step()
        return out


def _histogram(hist):
    """(counts, edges) from (counts, edges), or from a boost_histogram / hist object (1-D)."""
    if hasattr(hist, "axes") and hasattr(hist, "values"):
        if len(hist.axes) != 1:
            raise ValueError("BinnedNLL takes one-dimensional histograms")
        return np.asarray(hist.values(), dtype=np.float64), np.asarray(hist.axes[0].edges,
                                                                      dtype=np.float64)
    counts, edges = hist
    return np.asarray(counts, dtype=np.float64), np.asarray(edges, dtype=np.float64)


class BinnedNLL(NLL):
    """Poisson likelihood of histogram counts: sum_b (mu_b - n_b log mu_b), exact bin integrals.

    mu_b is the pdf's integral over bin b times the total count (or times the expected events
    of an extended pdf when ``extended=True``). Bins are the tape's events, so
    ``nll.function.with_data(n=..., lo=..., hi=...)`` replays on other counts.

    Examples
    --------
    >>> import numpy as np
    >>> from models import Observable, Parameter, Gaussian, BinnedNLL
    >>> x = Observable("x", (-5.0, 5.0))
    >>> g = Gaussian(x, Parameter("mu", 0.2), Parameter("sigma", 1.1, limits=(0.1, 5)))
    >>> counts, edges = np.histogram(g.sample(5000, np.random.default_rng(2)), 40, (-5, 5))
    >>> BinnedNLL(g, (counts, edges)).fit().valid
    True
    """

    def __init__(self, pdf, histogram, extended=False, constraints=()):
        if len(pdf.observables) != 1:
            raise ValueError("BinnedNLL takes a pdf of one observable")
        counts, edges = _histogram(histogram)
        if edges.ndim != 1 or counts.shape != (edges.size - 1,):
            raise ValueError(f"{counts.size} counts need {counts.size + 1} edges, got {edges.size}")
        if np.any(np.diff(edges) <= 0):
            raise ValueError("bin edges must increase")
        lo, hi = pdf.observables[0].limits
        if edges[0] < lo - 1e-12 or edges[-1] > hi + 1e-12:
            raise ValueError(f"bin edges [{edges[0]}, {edges[-1]}] exceed the observable range "
                             f"[{lo}, {hi}]")
        if np.any(counts < 0) or not np.all(np.isfinite(counts)):
            raise ValueError("bin counts must be finite and non-negative")
        if extended and not getattr(pdf, "extended", False):
            raise ValueError("extended=True needs a pdf with yields (SumPdf(..., yields=...))")
        self.pdf, self.extended, self.constraints = pdf, bool(extended), tuple(constraints)
        self.edges = edges
        name = pdf.observables[0].name
        data = {"n": counts, "lo": edges[:-1], "hi": edges[1:]}
        full = {name: pdf.observables[0].limits}

        def record(free):
            def fn(p, n, lo, hi):
                values = {q: p[i] for i, q in enumerate(free)}
                v = pdf._getter(values)
                log_frac = pdf._log_integral(v, {name: (lo, hi)}) - pdf._log_integral(v, full)
                total = pdf.expected_events(values) if self.extended else tape.sum(n)
                log_mu = log_frac + tape.log(total)
                out = tape.sum(tape.exp(log_mu) - n * log_mu)
                for c in self.constraints:
                    out = out + c.nll(values.get(c.parameter, c.parameter.value))
                return out
            return tape.record(fn, np.array([q.value for q in free]), data)

        self._setup(list(pdf.parameters) + [c.parameter for c in self.constraints], record)


class SimultaneousNLL(NLL):
    """The sum of NLLs of several categories; parameters with the same name are shared.

    Examples
    --------
    >>> import numpy as np
    >>> from models import Observable, Parameter, Gaussian, UnbinnedNLL, SimultaneousNLL
    >>> x = Observable("x", (-5.0, 5.0))
    >>> mu = Parameter("mu", 0.0)
    >>> a = UnbinnedNLL(Gaussian(x, mu, 1.0), np.array([0.1, -0.2]))
    >>> b = UnbinnedNLL(Gaussian(x, mu, 2.0), np.array([0.5]))
    >>> s = SimultaneousNLL({"a": a, "b": b})
    >>> s.names
    ['mu']
    """

    def __init__(self, nlls):
        self.nlls = dict(nlls)
        if not self.nlls:
            raise ValueError("SimultaneousNLL needs at least one category")
        params = []
        for nll in self.nlls.values():
            params += nll.all_parameters
        by_name = {}
        for p in params:
            by_name.setdefault(p.name, p)
        self.all_parameters = list(by_name.values())
        self.parameters = [p for p in self.all_parameters if not p.fixed]
        index = {p.name: i for i, p in enumerate(self.parameters)}
        self._maps = {k: np.array([index[p.name] for p in nll.parameters], dtype=np.intp)
                      for k, nll in self.nlls.items()}
        self.function = _SumFunction(self.nlls, self._maps, len(self.parameters))


class _SumFunction:
    """Value, gradient and Hessian of a sum of tape Functions over sub-vectors of parameters."""

    def __init__(self, nlls, maps, n):
        self.parts = [(nll.function, maps[k]) for k, nll in nlls.items()]
        self.n_params = n

    @property
    def n_events(self):
        return sum(f.n_events for f, _ in self.parts)

    def __call__(self, p):
        p = np.asarray(p, dtype=np.float64)
        return float(sum(f(p[idx]) for f, idx in self.parts))

    def value_and_grad(self, p):
        p = np.asarray(p, dtype=np.float64)
        v, g = 0.0, np.zeros(self.n_params)
        for f, idx in self.parts:
            vi, gi = f.value_and_grad(p[idx])
            v += vi
            np.add.at(g, idx, gi)
        return v, g

    def grad(self, p):
        return self.value_and_grad(p)[1]

    def hessian(self, p):
        p = np.asarray(p, dtype=np.float64)
        h = np.zeros((self.n_params, self.n_params))
        for f, idx in self.parts:
            h[np.ix_(idx, idx)] += f.hessian(p[idx])
        return h

    @property
    def hessian_in_one_pass(self):
        return all(f.hessian_in_one_pass for f, _ in self.parts)

    def value_grad_hessian(self, p):
        p = np.asarray(p, dtype=np.float64)
        v, g, h = 0.0, np.zeros(self.n_params), np.zeros((self.n_params, self.n_params))
        for f, idx in self.parts:
            vi, gi, hi = f.value_grad_hessian(p[idx])
            v += vi
            np.add.at(g, idx, gi)
            h[np.ix_(idx, idx)] += hi
        return v, g, h
