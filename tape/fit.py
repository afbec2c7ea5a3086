"""tape.fit: Hessian-seeded Migrad, or trust-region Newton, on a recorded likelihood.

What to use when
----------------
- ``method="migrad"`` (default): iminuit's Migrad with the exact tape gradient, strategy 0,
  started from the full inverse of the exact Hessian at the start point (made positive definite
  if it is not); exact Newton steps from Migrad's end point (and Migrad again from where they
  end, if they show that it stopped short); errors and covariance from the exact Hessian there
  (no numerical HESSE). MINOS, contours and plots through ``result.minuit``.
- ``method="newton"``: a trust-region Newton method on the exact gradient, with exact Hessians
  where the quadratic model needs them and SR1 updates in between, and Minuit's transformation
  for parameters with limits.
- ``hessian_seed=False``: plain Migrad with the tape gradient (for comparisons).
"""
import math
import time
import warnings

import numpy as np
from scipy.linalg.lapack import dpotrf

from .result import FitResult
from .threads import single_threaded_blas

__all__ = ["fit", "prepare", "make_positive_definite", "FitSetup"]


# Value requests of Migrad are answered by a value-and-gradient replay (see _Counted.value).
SPECULATE = True
# Up to this many free parameters Migrad starts from the full inverse of the exact Hessian.
FULL_SEED_MAX = 200
# On at least 4 times the first of these sizes that fits, Migrad's seed Hessian at the start
# point comes from a subsample of about that many events (``Function.subsample``): a seed need
# not be exact (Migrad updates it at every step), and far from the minimum the full one is no
# better a guide. Measured on the tutorial model: at 1e6 events the same number of Migrad steps
# with the seed 16 times cheaper; at 1e5 (16384: a quarter of the events) 118 -> 120 gradients
# over 6 datasets and 0.3 ms less per fit (Newton's far phase takes the same sizes).
SEED_EVENTS = (65536, 16384)


def _seed_function(f, events=None):
    """The function whose Hessian seeds Migrad: None (f itself), or a subsample of f of about
    the first of `events` (default SEED_EVENTS; a size or a tuple of sizes) of which f has at
    least 4 times as many events."""
    events = SEED_EVENTS if events is None else events
    n = getattr(f, "n_events", 0)
    if not hasattr(f, "subsample") or getattr(f, "stride", 1) != 1:
        return None
    for size in np.atleast_1d(events):
        if n >= 4 * size:
            return f.subsample(1 << (int(n // size)).bit_length() - 1)
    return None


def make_positive_definite(h, floor=1e-10):
    """h with its eigenvalues replaced by their absolute values, floored relative to the largest.

    An indefinite Hessian at the start point would send a Newton-like seed uphill; the absolute
    eigenvalues keep the curvature's scale and make every direction a descent direction.
    """
    h = 0.5 * (h + h.T)
    if h.size and np.isfinite(h).all():
        # the usual case, without an eigen-decomposition: if h - floor * trace(h) * 1 has a
        # Cholesky factor, every eigenvalue of h is above floor * trace(h) >= floor * max
        trace = float(np.trace(h))
        shifted = h - floor * trace * np.eye(len(h))
        if trace > 0 and dpotrf(shifted, lower=False, clean=False)[1] == 0:
            return h
    w, v = np.linalg.eigh(h)
    if w.size and w.min() > floor * max(abs(w).max(), 1e-300):
        return h
    scale = max(abs(w).max(), 1e-300) if w.size else 1.0
    w = np.maximum(np.abs(w), floor * scale)
    return (v * w) @ v.T


class FitSetup:
    """The validated inputs of a fit: start vector, names, limits and fixed flags."""

    def __init__(self, f, start, names=None, limits=None, fixed=None, errordef=None):
        start = np.array(start, dtype=np.float64).ravel()
        n = start.size
        n_f = getattr(f, "n_params", n)
        if n != n_f:
            raise ValueError(f"the start vector has {n} values, the function takes {n_f}")
        if names is None:
            names = getattr(f, "names", None) or [f"x{i}" for i in range(n)]
        names = [str(s) for s in names]
        if len(names) != n:
            raise ValueError(f"{len(names)} names for {n} parameters: {names}")
        if len(set(names)) != n:
            raise ValueError(f"parameter names are not unique: {names}")
        lims = [(-math.inf, math.inf)] * n
        if limits is not None:
            if len(limits) != n:
                raise ValueError(f"{len(limits)} limits for {n} parameters")
            lims = []
            for name, lim in zip(names, limits):
                if lim is None:
                    lims.append((-math.inf, math.inf))
                    continue
                lo, hi = lim
                lo = -math.inf if lo is None else float(lo)
                hi = math.inf if hi is None else float(hi)
                if not lo < hi:
                    raise ValueError(f"parameter {name!r}: empty limits {lim}")
                lims.append((lo, hi))
        for name, x, (lo, hi) in zip(names, start, lims):
            if not np.isfinite(x):
                raise ValueError(f"parameter {name!r}: start value {x} is not finite")
            if not lo <= x <= hi:
                raise ValueError(f"parameter {name!r}: start value {x} is outside its limits "
                                 f"({lo}, {hi})")
        fx = np.zeros(n, dtype=bool)
        if fixed is not None:
            fixed = list(fixed)
            if all(isinstance(v, str) for v in fixed):
                for v in fixed:
                    if v not in names:
                        raise ValueError(f"fixed names an unknown parameter {v!r}")
                    fx[names.index(v)] = True
            else:
                if len(fixed) != n:
                    raise ValueError(f"{len(fixed)} fixed flags for {n} parameters")
                fx = np.array([bool(v) for v in fixed])
        self.f = f
        self.start, self.names, self.limits, self.fixed = start, names, lims, fx
        self.errordef = float(errordef if errordef is not None else getattr(f, "errordef", 0.5))
        self.free = np.flatnonzero(~fx)
        self._transform = None

    @property
    def transform(self):
        """Minuit's internal transformation of the free parameters (``tape.newton.Transform``)."""
        if self._transform is None:
            from .newton import Transform
            self._transform = Transform([self.limits[i] for i in self.free])
        return self._transform

    def check_start(self):
        v = self.f(self.start)
        if not np.isfinite(v):
            raise ValueError(f"the function is not finite at the start values "
                             f"{dict(zip(self.names, self.start))}: {v}")
        return v


def prepare(f, start, names=None, limits=None, fixed=None, errordef=None):
    """Validate fit inputs (the start inside the limits, names, fixed flags) into a FitSetup."""
    return FitSetup(f, start, names, limits, fixed, errordef)


def limit_curvature(x, g, limits):
    """Per-parameter term c with J (H + diag(c)) J = J H J + diag(g x''): the chain rule's
    gradient term of Minuit's internal transformation, which a plain J H J leaves out.

    x'' / J'^2 depends only on the external value: for two-sided limits (sin transformation)
    with s = 2 (x - lo) / (hi - lo) - 1 it is -2 s / ((hi - lo) (1 - s^2)); for one-sided limits
    (sqrt transformation) with u = distance to the limit + 1 it is +-1 / (u (u^2 - 1)).
    """
    c = np.zeros_like(x)
    for i, (xi, (lo, hi)) in enumerate(zip(x, limits)):
        if math.isfinite(lo) and math.isfinite(hi):
            s = 2.0 * (xi - lo) / (hi - lo) - 1.0
            c[i] = g[i] * (-2.0 * s / ((hi - lo) * max(1.0 - s * s, 1e-12)))
        elif math.isfinite(lo):
            u = xi - lo + 1.0
            c[i] = g[i] / (u * max(u * u - 1.0, 1e-12))
        elif math.isfinite(hi):
            u = hi - xi + 1.0
            c[i] = -g[i] / (u * max(u * u - 1.0, 1e-12))
    return c


# Newton iterations at most after Migrad: one or two where Migrad ended near a minimum, a few
# more where Migrad's own EDM misjudged the distance (e.g. next to a limit); beyond that the fit
# is reported as not converged (bounded cost in toy studies of degenerate samples).
FINISH_ITER = 5
# Migrad runs again at most this many times from the finish's end point where the finish went
# well below Migrad's end point without converging (see fit()).
MIGRAD_RESTARTS = 4

_LAYOUT = []


def hessian_layout():
    """How this iminuit reads a user Hessian when parameters are fixed (probed once).

    "full": it picks the free rows and columns itself; "compact": it reads the leading
    n_free x n_free block (iminuit 2.33 does), so the free block must be moved there; None: it
    does neither, and the Hessian is not handed to Minuit when parameters are fixed.
    """
    if _LAYOUT:
        return _LAYOUT[0]
    from iminuit import Minuit

    d = np.array([1.0, 4.0, 9.0, 16.0])
    free = [1, 3]
    expected = 1.0 / np.sqrt(d[free])
    layout = None
    for name in ("full", "compact"):
        def hess(x, name=name):
            h = np.diag(d)
            if name == "compact":
                out = np.zeros_like(h)
                out[:2, :2] = h[np.ix_(free, free)]
                return out
            return h
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = Minuit(lambda x: 0.5 * np.sum(d * x * x), np.ones(4), grad=lambda x: d * x,
                       hessian=hess)
            m.errordef = 0.5
            m.fixed[0] = m.fixed[2] = True
            m.hesse()
        if np.allclose(np.array(m.errors)[free], expected, rtol=1e-6):
            layout = name
            break
    _LAYOUT.append(layout)
    return layout


class _SeedMisled(Exception):
    """Raised from a callback to stop a Migrad run that the full-inverse seed misled."""


class _Counted:
    """Value, gradient and Hessian callbacks that count calls and catch non-finite values.

    Minuit asks for the value and the gradient separately, often at the same point, and the
    limit-curvature term and the final Newton step need the gradient where Minuit already had it:
    each gradient is computed with its value in one replay, and the last value, gradient and
    Hessian are kept with the bytes of their parameter vector and handed out again only for a
    bit-identical vector.

    The Hessian handed to Minuit is made positive definite (a seed must point downhill) and,
    for parameters with limits, carries the gradient term of the internal transformation.
    """

    def __init__(self, f, seed_pd, limits=None, free=None, speculate=False):
        self.f, self.seed_pd = f, seed_pd
        self.speculate = speculate and hasattr(f, "value_and_grad")
        self.abort_on_bad = False
        self.limits = limits
        self.free = free      # free parameter indices when the Hessian must be compacted
        self.nfcn = self.ngrad = self.nhess = 0
        self.bad = None
        self.vmin, self.vmax = np.inf, -np.inf    # finite values seen (see wall)
        self._last = (None, None)
        self._value = (None, None)
        self._grad = (None, None, None)
        self._seed = (None, None)
        self._g2 = (None, None)
        self._seed_from = (None, None, None)     # (start key, seed function, its Hessian)

    def seed_from(self, x, f_seed):
        """Seed Hessians asked for at x (Minuit's, before Migrad starts) come from `f_seed`
        (a function with ``hessian``, e.g. a subsample, or a matrix); None: from the function
        itself, as every other Hessian."""
        if self._seed_from[2] is not None:
            # Minuit's cached seed and g2 at the start point were made from f_seed
            self._seed, self._g2 = (None, None), (None, None)
        key = None if x is None else np.array(x, dtype=np.float64)
        self._seed_from = (key, f_seed, None)

    def raw_hessian(self, x, seed=False):
        """The exact Hessian at x, computed once per point (seed, g2 and errors share it).
        With `seed`, the seed Hessian at the start point (see ``seed_from``)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        skey, f_seed, h = self._seed_from
        if seed and self._at_seed(x):
            # (Minuit hands back the start through its limit transformation: rounding differs)
            if h is None:
                if isinstance(f_seed, np.ndarray):
                    h = f_seed
                elif f_seed is None and self._last[0] == skey.tobytes():
                    # (from value_grad_hessian at the start: Minuit's x may differ by rounding)
                    h = self._last[1]
                else:
                    self.nhess += 1
                    h = (self.f if f_seed is None else f_seed).hessian(x)
                    if f_seed is None:
                        self._last = (x.tobytes(), h)
                h.setflags(write=False)
                self._seed_from = (skey, f_seed, h)
            return h
        key, h = self._last
        if key == x.tobytes():
            return h
        self.nhess += 1
        h = self.f.hessian(x)
        h.setflags(write=False)
        self._last = (x.tobytes(), h)
        return h

    def remember_value(self, x, v):
        """Record f(x) = v (computed elsewhere, e.g. by the start-value check)."""
        self._value = (np.ascontiguousarray(x, dtype=np.float64).tobytes(), v)

    def value(self, x):
        x = np.ascontiguousarray(x, dtype=np.float64)
        key = x.tobytes()
        pk, v = self._value
        if pk == key:
            return v
        pk, vg, _ = self._grad
        if pk == key:
            return vg
        if self.speculate:
            # Migrad asks for the gradient at most points whose value it asked for: one replay
            # for both costs less than two when a gradient costs under twice a value
            return self.value_and_grad(x)[0]
        self._leave_start(x)
        self.nfcn += 1
        v = self.f(x)
        self._value = (key, v)
        self._seen(v)
        if not np.isfinite(v):
            self._non_finite(x)
        return v

    def _non_finite(self, x):
        if self.bad is None:
            self.bad = np.array(x)
        if self.abort_on_bad:
            raise _SeedMisled()

    def _seen(self, v):
        if math.isfinite(v):
            if v < self.vmin:
                self.vmin = v
            if v > self.vmax:
                self.vmax = v

    def wall(self):
        """What Minuit is told where the function is not finite: a value above every finite one
        seen, by their spread (RooFit's "error wall"). A NaN would make Migrad's line search
        compare nothing and crawl back in thousands of calls; a wall makes it step back."""
        if not np.isfinite(self.vmax):
            return np.nan
        return self.vmax + max(self.vmax - self.vmin, 1.0, 1e-8 * abs(self.vmax))

    def minuit_value(self, x):
        """The value for Minuit: the wall where the function is not finite."""
        v = self.value(x)
        return v if math.isfinite(v) else self.wall()

    # iminuit's describe() takes the argument names from here instead of inspecting the
    # signature (0.1 ms per Minuit, a third of its construction); the names come from fit()
    minuit_value._parameters = {"x": None}

    def minuit_grad(self, x):
        """The gradient for Minuit (zeros where it is not finite: Minuit only asks there when
        its line search ended at a wall, which the end-point check reports)."""
        g = self.grad(x)
        return g if np.isfinite(g).all() else np.zeros_like(g)

    def _leave_start(self, x):
        """An evaluation away from the start: Minuit has left it, and the seed is spent (a
        Hessian asked for at the start from now on, e.g. by a final HESSE where Migrad did not
        move, is the exact one)."""
        if self._seed_from[0] is not None and not self._at_seed(x):
            self.seed_from(None, None)

    def _at_seed(self, x):
        skey = self._seed_from[0]
        return skey is not None and bool(np.all(np.abs(x - skey) <= 1e-12 * (1.0 + np.abs(skey))))

    def value_and_grad(self, x):
        x = np.ascontiguousarray(x, dtype=np.float64)
        self._leave_start(x)
        key = x.tobytes()
        pk, v, g = self._grad
        if pk == key:
            return v, g
        self.ngrad += 1
        v, g = self.f.value_and_grad(x)
        return self._keep(x, key, v, g)

    def _keep(self, x, key, v, g):
        """Cache (v, g) at x (read-only), and note the value's range and non-finite points."""
        g = np.array(g)
        g.setflags(write=False)
        self._grad = (key, v, g)
        self._seen(v)
        if not math.isfinite(v):
            self._non_finite(x)
        return v, g

    def grad(self, x):
        return self.value_and_grad(x)[1]

    def value_grad_hessian(self, x):
        """(value, gradient, exact Hessian) at x: from one pass (``value_grad_hessian``) where
        f has it and neither is known there yet (Newton asks where it expects to need all
        three), else from the caches and the separate calls."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        key = x.tobytes()
        fused = getattr(self.f, "value_grad_hessian", None)
        if fused is None or self._grad[0] == key or self._last[0] == key:
            v, g = self.value_and_grad(x)
            return v, g, self.raw_hessian(x)
        self._leave_start(x)
        self.ngrad += 1
        self.nhess += 1
        v, g, h = fused(x)
        h = np.array(h)
        h.setflags(write=False)
        self._last = (key, h)
        return (*self._keep(x, key, v, g), h)

    def hessian(self, x):
        """The Hessian handed to Minuit (computed once per point: Minuit asks several times)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        pk, out = self._seed
        if pk == x.tobytes():
            return out.copy()
        h = self.raw_hessian(x, seed=True)
        if self.limits is not None and any(math.isfinite(v) for lim in self.limits for v in lim):
            c = limit_curvature(x, self.grad(x), self.limits)
            if self.seed_pd:
                # a negative term (the gradient points away from the limit) grows without
                # bound next to the limit; made positive with the rest, it would pin the
                # parameter where it is: it is kept within the parameter's own curvature
                c = np.maximum(c, -np.abs(np.diag(h)))
            h = h + np.diag(c)
        if self.seed_pd:
            h = make_positive_definite(h)
        if self.free is not None:
            out = np.zeros_like(h)
            k = len(self.free)
            out[:k, :k] = h[np.ix_(self.free, self.free)]
            h = out
        self._seed = (x.tobytes(), h)
        return h.copy()

    def g2(self, x):
        x = np.ascontiguousarray(x, dtype=np.float64)
        pk, g2 = self._g2
        if pk != x.tobytes():
            g2 = np.diag(make_positive_definite(self.raw_hessian(x, seed=True))).copy()
            self._g2 = (x.tobytes(), g2)
        return g2.copy()


def _hessian_usable(setup):
    """Whether Minuit can take a user Hessian for this setup (with fixed parameters only where
    the installed iminuit's layout is known, see ``hessian_layout``)."""
    return not setup.fixed.any() or hessian_layout() is not None


def _minuit(setup, cb, values, use_hessian, strategy, tol):
    from .minuit import Minuit

    if use_hessian and setup.fixed.any():
        use_hessian = _hessian_usable(setup)
        if hessian_layout() == "compact":
            cb.free = setup.free

    with warnings.catch_warnings():
        # iminuit warns that hessian overrides g2; both are passed on purpose (see fit()).
        warnings.simplefilter("ignore")
        if use_hessian:
            m = Minuit(cb.minuit_value, values, grad=cb.minuit_grad, hessian=cb.hessian,
                       g2=cb.g2, name=setup.names)
        else:
            m = Minuit(cb.minuit_value, values, grad=cb.minuit_grad, name=setup.names)
    m.errordef = setup.errordef
    m.strategy = strategy
    if tol is not None:
        m.tol = tol
    # (whole lists: one call each instead of one per parameter)
    if any(math.isfinite(v) for lim in setup.limits for v in lim):
        m.limits = [(lo if math.isfinite(lo) else None, hi if math.isfinite(hi) else None)
                    for lo, hi in setup.limits]
    if setup.fixed.any():
        m.fixed = [bool(fx) for fx in setup.fixed]
    m.throw_nan = False
    return m, use_hessian


@single_threaded_blas
def fit(f, start, *, names=None, limits=None, fixed=None, method="migrad", hessian_seed=True,
        errordef=None, strategy=0, tol=None, ncall=None, final_hessian=True):
    """Minimize a recorded NLL; errors from its exact Hessian at the minimum.

    Parameters
    ----------
    f : tape.Function (or anything with ``__call__``, ``grad``, ``hessian``)
    start : array_like
        Start values (inside `limits`; a free parameter exactly on a limit starts just inside,
        1e-3 in Minuit's internal coordinate, where its internal gradient does not vanish).
    names : list of str, optional
    limits : list of (lo, hi) or None, optional
        Per parameter; None or infinite for an open side.
    fixed : list of bool or list of names, optional
        Fixed parameters stay at their start values.
    method : {"migrad", "newton"}
    hessian_seed : bool or (n, n) array
        Seed Migrad with the exact Hessian at the start (made positive definite if it is not);
        or with this matrix instead, e.g. the ``hessian`` of a fit at a neighbouring point of
        a scan (Newton takes it as its first model).
    final_hessian : bool
        Errors and covariance from the exact Hessian at the reported minimum (default). False
        takes them from the last exact Hessian of the minimization, evaluated within Minuit's
        tolerance of the minimum: one Hessian fewer, for scans that only need the minimum
        (the errors can then be off by percents near a degenerate minimum).
    errordef : float, optional
        0.5 for NLLs (the default, or ``f.errordef``), 1 for chi-square.

    Returns
    -------
    FitResult

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = np.random.default_rng(1).normal(1.0, 2.0, 1000)
    >>> f = tape.record(lambda p, x: np.sum(0.5 * ((x - p[0]) / p[1]) ** 2 + np.log(p[1])),
    ...                 [0.0, 1.0], data={"x": x})
    >>> r = tape.fit(f, [0.5, 1.5], names=["mu", "sigma"], limits=[None, (0.1, 10)])
    >>> r.valid, round(float(r.errors["mu"] / (r.values["sigma"] / np.sqrt(1000))), 3)
    (True, 1.0)
    """
    setup = prepare(f, start, names, limits, fixed, errordef)
    setup.start = _off_the_limits(setup)
    if method not in ("migrad", "newton"):
        raise ValueError(f"unknown method {method!r}: use 'migrad' or 'newton'")
    seed_matrix = None
    if np.ndim(hessian_seed) == 0:
        hessian_seed = bool(hessian_seed)
    else:
        seed_matrix = np.array(hessian_seed, dtype=np.float64)
        n = setup.start.size
        if seed_matrix.shape != (n, n):
            raise ValueError(f"hessian_seed must be True, False or an ({n}, {n}) matrix, got "
                             f"shape {seed_matrix.shape}")
        free = np.ix_(setup.free, setup.free)
        if not np.all(np.isfinite(seed_matrix[free])):
            raise ValueError("hessian_seed has non-finite entries for free parameters")
        fixed_only = np.zeros_like(seed_matrix)
        fixed_only[free] = seed_matrix[free]       # rows of fixed parameters play no part
        seed_matrix, hessian_seed = fixed_only, True
    t0 = time.perf_counter()
    cb = _Counted(f, seed_pd=True, limits=setup.limits, speculate=SPECULATE)
    # the start check's evaluation is the fit's first one
    from .newton import far_function, newton
    seed_source = None
    if method != "newton":
        # where Minuit's seed Hessian at the start comes from: the given matrix, or a subsample
        # of many events (None: the function itself, whose Hessian comes with the gradient)
        seed_source = seed_matrix if seed_matrix is not None else _seed_function(f)
        if hessian_seed and setup.free.size and _hessian_usable(setup) and seed_source is None:
            v0 = cb.value_grad_hessian(setup.start)[0]
        else:
            v0 = cb.value(setup.start)
    elif seed_matrix is None and setup.free.size and far_function(f) is None:
        # Newton starts with the exact Hessian: from the same pass as the gradient
        v0 = cb.value_grad_hessian(setup.start)[0]
    else:
        v0 = cb.value_and_grad(setup.start)[0]
    if not np.isfinite(v0):
        raise ValueError(f"the function is not finite at the start values "
                         f"{dict(zip(setup.names, setup.start))}: {v0}")
    g0 = cb.grad(setup.start)
    steep = [setup.names[i] for i in setup.free if not np.isfinite(g0[i])]
    if steep:
        raise ValueError(f"the gradient is not finite at the start values for {steep} "
                         f"({dict(zip(setup.names, setup.start))}): start where the function's "
                         "slope is finite, e.g. inside a limit rather than on it")
    if method == "newton":
        res = newton(setup, cb=cb, seed_hessian=seed_matrix, final_hessian=final_hessian)
        res.time = time.perf_counter() - t0
        return res
    x = setup.start
    for restart in range(MIGRAD_RESTARTS + 1):
        m = _migrad(setup, cb, x, hessian_seed, seed_source, strategy, tol, ncall)
        values = np.array(m.values)
        message = ""
        valid = bool(m.valid)
        if cb.bad is not None and not np.isfinite(cb.value(values)):
            valid, message = False, "the function became non-finite during the fit"
        elif not np.all(np.isfinite(cb.grad(values)[setup.free])):
            # (Minuit was shown zeros there: it may have stopped believing it had converged)
            valid, message = False, "the gradient is not finite at the end point"
        elif cb.bad is not None:
            message = "the function was non-finite at some trial points; Minuit stepped back"
        if not valid and not message:
            message = _minuit_message(m)
        # Migrad stops once its estimated distance to the minimum (EDM) is below its goal; exact
        # Newton steps from there take the rest of the way to rounding level, with the exact
        # Hessian at Migrad's end point (within Minuit's tolerance of the minimum, where a HESSE
        # would be; or, if the exact EDM there is above that tolerance, where it is below); the
        # errors come from the exact Hessian at the end point (final_hessian)
        res = newton(setup, start=values, cb=cb, near_goal=0.002 * m.tol * setup.errordef,
                     min_steps=1, max_iter=FINISH_ITER, final_hessian=final_hessian)
        lowered = math.isfinite(res.fval) and res.fval < m.fval - 0.01 * setup.errordef
        if res.valid or not lowered or restart == MIGRAD_RESTARTS or \
                (m.fmin is not None and m.fmin.has_reached_call_limit):
            break
        # Migrad stopped short of the minimum (strategy 0 misjudged its distance, e.g. after a
        # start far from it) and the exact steps went well below its end point without
        # converging in FINISH_ITER iterations: Migrad again from there, as a user would call
        # migrad() again, seeded with the exact Hessian at that point
        x = _off_the_limits(setup, np.array(res.values))
        finite = res.hessian is not None and np.all(np.isfinite(res.hessian))
        seed_source = res.hessian if hessian_seed and finite else None
    if not res.valid and valid and not lowered:
        # a degenerate minimum (e.g. two components of a mixture that coincide, a parameter at
        # its limit): the exact steps cannot converge, but no lower point exists either. Minuit's
        # minimum is kept, as Minuit reports it, with errors from the exact Hessian where that
        # is positive definite and from Minuit where it is not
        res = _migrad_minimum(setup, cb, m, values)
        message = f"Migrad's minimum (the exact Newton finish: {res.message})"
    else:
        valid = valid and res.valid
        message = message or res.message
    return FitResult(names=setup.names, values=np.array(res.values), errors=np.array(res.errors),
                     covariance=res.covariance, fval=res.fval, edm=res.edm, valid=valid,
                     message=message, nfcn=cb.nfcn, ngrad=cb.ngrad, nhess=cb.nhess,
                     method="migrad" if hessian_seed else "migrad (no Hessian seed)",
                     fixed=setup.fixed, minuit=m, time=time.perf_counter() - t0,
                     hessian=res.hessian)


def _migrad(setup, cb, x, hessian_seed, seed_source, strategy, tol, ncall):
    """A Minuit at x, after Migrad (seeded as fit() describes); returns the Minuit."""
    m, seeded = _minuit(setup, cb, x, bool(hessian_seed) and setup.free.size > 0, strategy, tol)
    if seeded and setup.free.size <= FULL_SEED_MAX:
        # Migrad's own seed takes only the diagonal of a user Hessian; a HESSE on the user
        # Hessian first gives the start state its full inverse, which Migrad then starts from
        # (iminuit's HESSE costs 0.6 s for 600 parameters: larger fits keep the diagonal seed).
        # Where the start is far from quadratic (an indefinite Hessian made positive definite),
        # that inverse can send Migrad's first steps where the function is not finite, after
        # which it crawls back in thousands of calls: then it starts again with the diagonal.
        cb.seed_from(x, seed_source)
        if not _seed_state(m, cb, setup, x):
            m.hesse()
        cb.abort_on_bad = True
        try:
            m.migrad(ncall=ncall)
        except _SeedMisled:
            cb.abort_on_bad, cb.bad = False, None
            m, _ = _minuit(setup, cb, x, True, strategy, tol)
            cb.seed_from(x, seed_source)
            m.migrad(ncall=ncall)
        finally:
            cb.abort_on_bad = False
            cb.seed_from(None, None)
    else:
        cb.seed_from(x, seed_source if seeded else None)
        try:
            m.migrad(ncall=ncall)
        finally:
            cb.seed_from(None, None)
    return m


def _seed_state(m, cb, setup, x):
    """Give Minuit's start state the full inverse of the seed Hessian at x, as a HESSE on that
    Hessian would, without the HESSE: Minuit's own inversion and bookkeeping take 5 ms at 126
    parameters (a fifth of the 1Lbb limit scan), 0.35 ms at 7. Returns False, having changed
    nothing, where Minuit moved the start, the seed is not positive definite or the state cannot
    be written (``tape.minuit.write_start_covariance``): the caller then runs the HESSE."""
    from .minuit import start_internal, write_start_covariance
    from .newton import pd_inverse
    free = setup.free
    tr = setup.transform
    t = tr.to_internal(x[free])
    internal = start_internal(m)
    if internal is None or internal.shape != t.shape or \
            not np.allclose(internal, t, rtol=1e-9, atol=1e-12):
        # Minuit moved the start (a two-sided parameter within ~1e-8 of its range from a limit
        # is clamped inside): its HESSE takes the Hessian there, so it runs
        return False
    k = free.size
    h = cb.hessian(x)           # what Minuit's HESSE would be handed
    h = h[:k, :k] if cb.free is not None else h[np.ix_(free, free)]
    inv = pd_inverse(0.5 * (h + h.T))
    d1 = tr.to_external(t)[1]
    if inv is None or not np.all(d1 != 0):
        return False
    cov = 2.0 * setup.errordef * inv
    cov_int = cov / np.outer(d1, d1)
    if not np.all(np.isfinite(cov_int)):
        return False
    g = cb.grad(x)[free] * d1
    edm = 0.25 / setup.errordef * float(g @ cov_int @ g)
    return write_start_covariance(m, cov, cov_int, float(cb.value(x)), edm)


def _migrad_minimum(setup, cb, m, values):
    """The result at Migrad's end point: values, exact-Hessian (or Minuit's) covariance, EDM."""
    from types import SimpleNamespace
    free, n = setup.free, values.size
    h = cb.raw_hessian(values)[np.ix_(free, free)]
    h = 0.5 * (h + h.T)
    from .newton import pd_inverse
    inv = pd_inverse(h) if free.size else None
    if inv is not None:
        # (the same positive-definiteness test and inverse as Newton's errors)
        cov = np.zeros((n, n))
        cov[np.ix_(free, free)] = 2.0 * setup.errordef * inv
        errors = np.sqrt(np.diag(cov))
        message = "no convergence; the exact Hessian is positive definite"
    else:
        cov = np.array(m.covariance, dtype=np.float64) if m.covariance is not None \
            else np.full((n, n), np.nan)
        errors = np.array(m.errors, dtype=np.float64)
        errors[setup.fixed] = 0.0
        message = "the exact Hessian is not positive definite; errors from Minuit"
    hessian = np.zeros((n, n))
    hessian[np.ix_(free, free)] = h
    return SimpleNamespace(values=values, errors=errors, covariance=cov, fval=float(m.fval),
                           edm=float(m.fmin.edm), message=message, hessian=hessian)


def _off_the_limits(setup, x=None):
    """The start (or x), with free parameters that sit exactly on a limit moved inside by 1e-3 in
    Minuit's internal coordinate (2.5e-7 of the range for two limits, 5e-7 for one): on the limit
    the transformation's derivative vanishes, so the internal gradient is zero whatever the
    function does, and a gradient-based step never leaves it."""
    x = (setup.start if x is None else x).copy()
    free = setup.free
    tr = setup.transform
    on = (x[free] == tr.lo) | (x[free] == tr.hi)
    if on.any():
        t = tr.to_internal(x[free])
        # two limits: t = +-pi/2 on them; one limit: t = 0 on it
        t[on] = np.where(tr.both[on], t[on] - 1e-3 * np.sign(t[on]), 1e-3)
        x[free[on]] = tr.to_external(t)[0][on]
    return x


def _minuit_message(m):
    fm = m.fmin
    if fm is None:
        return "Migrad did not run"
    reasons = [name for name, bad in (("call limit reached", fm.has_reached_call_limit),
                                      ("EDM above maximum", fm.is_above_max_edm),
                                      ("parameters at limit", fm.has_parameters_at_limit),
                                      ("covariance not accurate", not fm.has_accurate_covar))
               if bad]
    return "Migrad: " + (", ".join(reasons) if reasons else "invalid minimum")
