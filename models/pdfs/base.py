"""Pdf: the base of every probability density, normalized over its observables' ranges.

A pdf is written once, with ``tape.*`` functions, and evaluates on plain arrays (``log_prob``,
``pdf``) and on tracers alike (when a likelihood records it). Subclasses give:

- ``_log_unnorm(X, v)``: log of the unnormalized density; ``X`` maps observable names to arrays,
  ``v(role)`` returns the value (float or tracer) of the parameter in that role;
- ``_log_integral(v, ranges)`` (optional): log of the density's integral over the box ``ranges``
  ({observable name: (lo, hi)}); the default integrates with fixed-order Gauss-Legendre
  quadrature, recorded on the tape so that it is differentiated exactly;
- ``_sample(n, rng, v)`` (optional): ``n`` draws; the default is accept-reject.
"""
import functools

import numpy as np

import tape

from ..parameters import Observable, Parameter

__all__ = ["Pdf", "as_data", "GL_ORDER"]

GL_ORDER = 128


def as_data(pdf, x):
    """{observable name: float64 array} from an array (one observable) or a mapping."""
    obs = pdf.observables
    if isinstance(x, tape.Tracer) or isinstance(x, np.ndarray) or np.isscalar(x) or isinstance(x, (list, tuple)):
        if len(obs) != 1:
            raise ValueError(f"{type(pdf).__name__} has observables {[o.name for o in obs]}: pass "
                             "data as a mapping of observable name to array")
        x = {obs[0].name: x}
    if not hasattr(x, "keys"):
        raise TypeError(f"data must be an array or a mapping, got {type(x).__name__}")
    out = {}
    for o in obs:
        if o.name not in x:
            raise KeyError(f"data has no array for observable {o.name!r}")
        v = x[o.name]
        out[o.name] = v if isinstance(v, tape.Tracer) else np.asarray(v, dtype=np.float64)
    return out


class Pdf:
    """Base class of all pdfs (see the module docstring for what a subclass provides)."""

    def __init__(self, observables, **params):
        obs = tuple(observables)
        for o in obs:
            if not isinstance(o, Observable):
                raise TypeError(f"expected an Observable, got {o!r}")
        self.observables = obs
        self._params = {}
        for role, p in params.items():
            if isinstance(p, (list, tuple)):
                p = [q if isinstance(q, Parameter) else float(q) for q in p]
            elif not isinstance(p, Parameter):
                p = float(p)
            self._params[role] = p

    # -- parameters -----------------------------------------------------------------------------
    @property
    def parameters(self):
        """The Parameters this pdf depends on (unique, in order of first appearance)."""
        out = []
        for p in self._own_parameters():
            if isinstance(p, Parameter) and all(p is not q for q in out):
                out.append(p)
        for d in self._daughters():
            for p in d.parameters:
                if all(p is not q for q in out):
                    out.append(p)
        return out

    def _own_parameters(self):
        for p in self._params.values():
            if isinstance(p, (list, tuple)):
                yield from p
            else:
                yield p

    def _daughters(self):
        return ()

    @staticmethod
    def _resolver(values):
        """v(role_value) -> value: a Parameter looked up in `values` (else its own value)."""
        values = values or {}

        def value_of(p):
            if isinstance(p, Parameter):
                for q, val in values.items():
                    if q is p:
                        return val
                return p.value
            return p
        return value_of

    def _getter(self, values):
        return _Values(self, values)

    # -- density ----------------------------------------------------------------------------------
    def _log_unnorm(self, X, v):
        raise NotImplementedError

    def _log_integral(self, v, ranges):
        return gauss_legendre_log_integral(self, v, ranges)

    def _ranges(self, norm_range=None):
        ranges = {o.name: o.limits for o in self.observables}
        if norm_range is not None:
            if len(self.observables) == 1 and not hasattr(norm_range, "keys"):
                norm_range = {self.observables[0].name: norm_range}
            for name, (lo, hi) in norm_range.items():
                if name not in ranges:
                    raise KeyError(f"norm_range names unknown observable {name!r}")
                full = ranges[name]
                if not full[0] <= lo < hi <= full[1]:
                    raise ValueError(f"norm_range {(lo, hi)} of {name!r} is not inside {full}")
                ranges[name] = (float(lo), float(hi))
        return ranges

    def _log_prob(self, X, values, norm_range=None):
        v = self._getter(values)
        return self._log_unnorm(X, v) - self._log_integral(v, self._ranges(norm_range))

    def log_prob(self, x, values=None, *, norm_range=None):
        """Log of the normalized density at `x` (array, or mapping for several observables).

        `values` maps Parameters to values (default: their current values); `norm_range`
        normalizes over a sub-range instead of the observables' full range.
        """
        return self._log_prob(as_data(self, x), values, norm_range)

    def pdf(self, x, values=None, *, norm_range=None):
        """The normalized density at `x`."""
        return tape.exp(self.log_prob(x, values, norm_range=norm_range))

    def integral(self, ranges=None, values=None):
        """Integral of the normalized density over `ranges` ({name: (lo, hi)}; default all)."""
        v = self._getter(values)
        return float(np.exp(self._log_integral(v, self._ranges(ranges))
                            - self._log_integral(v, self._ranges())))

    # -- sampling ---------------------------------------------------------------------------------
    def sample(self, n, rng=None, values=None):
        """`n` events drawn from the pdf (an array for one observable, else a dict of arrays)."""
        n = int(n)
        if n < 0:
            raise ValueError(f"cannot sample {n} events")
        rng = np.random.default_rng(rng)
        out = self._sample(n, rng, self._getter(values))
        if len(self.observables) == 1:
            return out[self.observables[0].name]
        return out

    def _sample(self, n, rng, v):
        return accept_reject(self, n, rng, v)

    def __repr__(self):
        args = ", ".join(f"{k}={getattr(p, 'name', p)!r}" for k, p in self._params.items())
        return f"{type(self).__name__}({', '.join(o.name for o in self.observables)}; {args})"


class _Values:
    """v(role): the value of this pdf's parameter in `role`; ``v.values`` for daughter pdfs."""

    __slots__ = ("pdf", "values", "_of")

    def __init__(self, pdf, values):
        self.pdf = pdf
        self.values = values if not isinstance(values, _Values) else values.values
        self._of = Pdf._resolver(self.values)

    def __call__(self, role):
        p = self.pdf._params[role]
        if isinstance(p, (list, tuple)):
            return [self._of(q) for q in p]
        return self._of(p)


@functools.lru_cache(maxsize=8)
def gauss_legendre(order):
    """Gauss-Legendre nodes and weights on [-1, 1] (computed once per order)."""
    t, w = np.polynomial.legendre.leggauss(order)
    t.setflags(write=False)
    w.setflags(write=False)
    return t, w


def gauss_legendre_log_integral(pdf, v, ranges, order=GL_ORDER):
    """log of the integral of exp(_log_unnorm) over the box `ranges`, by Gauss-Legendre.

    The nodes are constants and the density is evaluated on them with traced parameters, so the
    integral is recorded on the tape and differentiated exactly. One observable at a time (a
    tensor grid for several; products of independent pdfs integrate factor by factor instead).
    """
    t, w = gauss_legendre(order)
    names = list(ranges)
    (lo0, hi0), = ranges.values() if len(ranges) == 1 else ((0.0, 0.0),)
    if len(names) == 1 and (isinstance(lo0, tape.Tracer) or np.ndim(lo0) > 0):
        # one integral per element of array-valued ranges (the bins of a binned likelihood)
        t01 = 0.5 * (t + 1.0)
        lo_c, hi_c = tape.reshape(lo0, (-1, 1)), tape.reshape(hi0, (-1, 1))
        x = lo_c + (hi_c - lo_c) * t01
        lw = tape.log((hi_c - lo_c) * (0.5 * w))
        return tape.reshape(tape.logsumexp(pdf._log_unnorm({names[0]: x}, v) + lw, axis=1), (-1,))
    grids, logw = [], np.zeros(())
    for name in names:
        lo, hi = ranges[name]
        grids.append(0.5 * (hi - lo) * t + 0.5 * (hi + lo))
        logw = np.add.outer(logw, np.log(0.5 * (hi - lo) * w))
    mesh = np.meshgrid(*grids, indexing="ij")
    X = {name: g.ravel() for name, g in zip(names, mesh)}
    return tape.logsumexp(pdf._log_unnorm(X, v) + logw.ravel())


def accept_reject(pdf, n, rng, v, fmax=None):
    """Accept-reject sampling under a flat envelope: `fmax` (a bound of the unnormalized density)
    if the pdf knows one, else the maximum on a grid with a safety margin."""
    names = [o.name for o in pdf.observables]
    lims = [o.limits for o in pdf.observables]
    k = max(2, int(round(4096 ** (1.0 / len(names)))))
    if fmax is None:
        grid = np.meshgrid(*[np.linspace(lo, hi, k) for lo, hi in lims], indexing="ij")
        G = {name: g.ravel() for name, g in zip(names, grid)}
        with np.errstate(all="ignore"):
            fmax = float(np.nanmax(np.exp(np.asarray(pdf._log_unnorm(G, v), dtype=np.float64))))
        fmax *= 1.2
    if not np.isfinite(fmax) or fmax <= 0:
        raise ValueError(f"cannot sample {pdf!r}: its density is not positive and finite")
    out = {name: np.empty(n) for name in names}
    filled = 0
    while filled < n:
        m = max(1024, 2 * (n - filled))
        X = {name: rng.uniform(lo, hi, m) for name, (lo, hi) in zip(names, lims)}
        with np.errstate(all="ignore"):
            f = np.exp(np.asarray(pdf._log_unnorm(X, v), dtype=np.float64))
        keep = np.flatnonzero(rng.uniform(0.0, fmax, m) < f)[: n - filled]
        for name in names:
            out[name][filled:filled + keep.size] = X[name][keep]
        filled += keep.size
    return out
