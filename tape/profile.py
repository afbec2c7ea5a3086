"""Profile-likelihood scans that reuse one recorded tape.

Each point fixes the scanned parameter and minimizes the others, warm-started from the
neighbouring point's minimum and seeded with its exact Hessian; nothing is recorded again. The
curve needs the minima only: the errors of each point's fit come from its last exact Hessian
(``final_hessian=False``); the global fit's are exact at its minimum. The result holds the
Delta(2 NLL) curve and its crossings of 1 and 4 (the 1 and 2 sigma intervals for one
parameter).
"""
import sys

import numpy as np

from .fit import fit, prepare
from .threads import single_threaded_blas

__all__ = ["profile", "ProfileResult"]


class ProfileResult:
    """A profile scan: ``values``, ``delta`` (Delta 2NLL, i.e. (f - f_min) / errordef),
    ``intervals`` {1: (lo, hi), 2: (lo, hi)} (None where the scan does not cross), ``fits``."""

    def __init__(self, name, values, fvals, fmin, best, fits, errordef):
        self.name = name
        self.values = np.asarray(values, dtype=np.float64)
        self.fvals = np.asarray(fvals, dtype=np.float64)
        self.fmin = float(min(fmin, np.nanmin(self.fvals)))
        self.best = best
        self.fits = fits
        self.delta = (self.fvals - self.fmin) / errordef
        self.intervals = {k: self.interval(k) for k in (1, 2)}

    def interval(self, n_sigma=1):
        """(lo, hi) where Delta(2NLL) crosses n_sigma**2 (None where the scan does not cross).

        The crossing is found on a cubic spline through the scan points (exact for a parabola),
        bracketed by the two points on either side of the level.
        """
        level = n_sigma ** 2
        x, d = self.values, self.delta
        ok = np.isfinite(d)
        x, d = x[ok], d[ok]
        if x.size < 2:
            return (None, None)
        spline = None
        if x.size >= 4:
            from scipy.interpolate import CubicSpline
            spline = CubicSpline(x, d)
        i0 = int(np.nanargmin(d))
        xmin = self.best.values[self.name] if self.best is not None else x[i0]
        lo = hi = None
        for i in range(i0, 0, -1):
            if d[i - 1] >= level > d[i]:
                lo = _cross(x[i - 1], d[i - 1], x[i], d[i], level, spline)
                break
        for i in range(i0, len(x) - 1):
            if d[i + 1] >= level > d[i]:
                hi = _cross(x[i], d[i], x[i + 1], d[i + 1], level, spline)
                break
        if lo is not None and lo > xmin:
            lo = None
        if hi is not None and hi < xmin:
            hi = None
        return (lo, hi)

    def plot(self, ax=None, **kwargs):
        """Plot Delta(2NLL) against the parameter with matplotlib (if it is installed)."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as e:
            raise ImportError("ProfileResult.plot needs matplotlib (pip install matplotlib)") from e
        ax = ax or plt.gca()
        ax.plot(self.values, self.delta, **kwargs)
        for level in (1, 4):
            ax.axhline(level, color="gray", lw=0.5, ls="--")
        ax.set_xlabel(self.name)
        ax.set_ylabel(r"$\Delta(2\,\mathrm{NLL})$")
        return ax

    def __repr__(self):
        def fmt(iv):
            return "(" + ", ".join("-" if v is None else f"{v:.6g}" for v in iv) + ")"
        return (f"ProfileResult({self.name}: {len(self.values)} points, 1 sigma "
                f"{fmt(self.intervals[1])}, 2 sigma {fmt(self.intervals[2])})")


def _cross(x0, d0, x1, d1, level, spline=None):
    if spline is not None:
        from scipy.optimize import brentq
        try:
            return float(brentq(lambda t: spline(t) - level, x0, x1))
        except ValueError:
            pass
    if d1 == d0:
        return 0.5 * (x0 + x1)
    return x0 + (level - d0) * (x1 - x0) / (d1 - d0)


class _Progress:
    def __init__(self, total, label, enabled):
        self.total, self.label, self.enabled, self.done = total, label, enabled, 0

    def step(self):
        self.done += 1
        if self.enabled:
            width = 30
            fill = int(width * self.done / self.total)
            sys.stderr.write(f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] "
                             f"{self.done}/{self.total}")
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


@single_threaded_blas
def profile(f, param, values, *, start, names=None, limits=None, fixed=None, method="migrad",
            errordef=None, progress=None):
    """Profile-likelihood scan of `param` over `values`, reusing the recorded tape.

    Parameters
    ----------
    f : tape.Function
    param : str or int
        The scanned parameter (name or position).
    values : array_like
        Points of the scan.
    start : array_like
        Start values of all parameters (the global fit starts here).
    progress : bool, optional
        Show a progress bar on stderr (default: for scans of more than 20 points when stderr
        is a terminal).

    Returns
    -------
    ProfileResult

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = np.random.default_rng(1).normal(0.0, 1.0, 400)
    >>> f = tape.record(lambda p, x: np.sum(0.5 * (x - p[0]) ** 2), [0.0], data={"x": x})
    >>> r = tape.profile(f, 0, np.linspace(-0.3, 0.3, 31), start=[0.0])
    >>> lo, hi = r.intervals[1]
    >>> round(float((hi - lo) / 2 * np.sqrt(400)), 4)
    1.0
    """
    setup = prepare(f, start, names, limits, fixed, errordef)
    idx = setup.names.index(param) if isinstance(param, str) else int(param)
    name = setup.names[idx]
    values = np.sort(np.asarray(values, dtype=np.float64).ravel())
    lo, hi = setup.limits[idx]
    if values.size == 0 or values[0] < lo or values[-1] > hi:
        raise ValueError(f"scan values of {name!r} must lie inside its limits ({lo}, {hi})")
    kw = dict(names=setup.names, limits=setup.limits, errordef=setup.errordef, method=method)
    best = fit(f, setup.start, fixed=setup.fixed, **kw)
    fixed_scan = setup.fixed.copy()
    fixed_scan[idx] = True
    if progress is None:
        progress = values.size > 20 and sys.stderr.isatty()
    bar = _Progress(values.size, f"profile {name}", progress)
    fvals = np.full(values.size, np.nan)
    fits = [None] * values.size
    i0 = int(np.argmin(np.abs(values - best.values[idx])))
    for order in (range(i0, values.size), range(i0 - 1, -1, -1)):
        # each point starts at its neighbour's minimum, with the exact Hessian there as seed
        x = np.array(best.values)
        seed = best.hessian if best.valid and best.hessian is not None else True
        for i in order:
            x[idx] = values[i]
            x = np.clip(x, [l for l, _ in setup.limits], [h for _, h in setup.limits])
            r = fit(f, x, fixed=fixed_scan, hessian_seed=seed, final_hessian=False, **kw)
            fits[i], fvals[i] = r, r.fval
            if r.valid:
                x = np.array(r.values)
                seed = r.hessian if r.hessian is not None else True
            bar.step()
    return ProfileResult(name, values, fvals, best.fval, best, fits, setup.errordef)
