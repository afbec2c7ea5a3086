"""Trust-region Newton minimization on exact gradients and Hessians, with Minuit-style limits.

Bounded parameters are mapped to unbounded internal ones as Minuit does (sin for two-sided
limits, sqrt for one-sided); the internal Hessian is the exact chain rule J H J + diag(g x''),
including the gradient term. Each step solves the trust-region subproblem through an eigen-
decomposition (shifted Newton step, More-Sorensen style), so an indefinite Hessian is handled.
"""
import math

import numpy as np
from scipy.linalg.lapack import dpotrf, dpotri, dpotrs, dtrtrs

from .result import FitResult

__all__ = ["newton", "Transform"]


class Transform:
    """Minuit's external <-> internal parameter transformation, with first and second derivatives.

    Vectorized over parameters: sin for two-sided limits, sqrt for one-sided, identity else.
    The index sets are computed once: a Newton iteration maps a point in a few microseconds.
    """

    def __init__(self, limits):
        lim = np.array(limits, dtype=np.float64).reshape(-1, 2)
        lo, hi = lim[:, 0].copy(), lim[:, 1].copy()
        self.lo, self.hi = lo, hi
        self.both = np.isfinite(lo) & np.isfinite(hi)
        self.lower = np.isfinite(lo) & ~self.both
        self.upper = np.isfinite(hi) & ~self.both
        self.half = np.where(self.both, 0.5 * (hi - lo), 1.0)
        self._all_both = bool(self.both.all())
        self._b = np.flatnonzero(self.both)
        self._one = np.flatnonzero(self.lower | self.upper)
        # one-sided: x = anchor + sign * (sqrt(t^2 + 1) - 1), anchor the limit
        self._sign = np.where(self.lower[self._one], 1.0, -1.0)
        self._anchor = np.where(self.lower[self._one], lo[self._one], hi[self._one])

    def to_internal(self, x):
        x = np.asarray(x, dtype=np.float64)
        if self._all_both:
            return np.arcsin(np.clip((x - self.lo) / self.half - 1.0, -1.0, 1.0))
        out = x.copy()
        b, one = self._b, self._one
        if b.size:
            out[b] = np.arcsin(np.clip((x[b] - self.lo[b]) / self.half[b] - 1.0, -1.0, 1.0))
        if one.size:
            u = self._sign * (x[one] - self._anchor) + 1.0
            out[one] = np.sqrt(np.maximum(0.0, u * u - 1.0))
        return out

    def to_external(self, t):
        """(x, dx/dt, d2x/dt2) elementwise."""
        t = np.asarray(t, dtype=np.float64)
        if self._all_both:
            h, sn = self.half, np.sin(t)
            return self.lo + h * (sn + 1.0), h * np.cos(t), -h * sn
        x, d1, d2 = t.copy(), np.ones_like(t), np.zeros_like(t)
        b, one = self._b, self._one
        if b.size:
            h, tb = self.half[b], t[b]
            sn = np.sin(tb)
            x[b] = self.lo[b] + h * (sn + 1.0)
            d1[b], d2[b] = h * np.cos(tb), -h * sn
        if one.size:
            v = t[one]
            r = np.sqrt(v * v + 1.0)
            x[one] = self._anchor + self._sign * (r - 1.0)
            d1[one], d2[one] = self._sign * v / r, self._sign / (r * r * r)
        return x, d1, d2


def _trust_step(g, h, radius, eig=None):
    """argmin_s g.s + s.H.s/2 subject to |s| <= radius (eigen-decomposition, then Newton's method
    on the secular equation 1/|s(lam)| = 1/radius for the shift lam, as More and Sorensen).
    `eig`: (w, v, v.T @ g) of h if already at hand."""
    if eig is None:
        w, v = np.linalg.eigh(0.5 * (h + h.T))
        gt = v.T @ g
    else:
        w, v, gt = eig
    if w[0] > 0:
        s = -gt / w
        if math.sqrt(s @ s) <= radius:
            return v @ s
    lam = max(0.0, -w[0]) + 1e-12 * max(1.0, abs(w).max())
    for _ in range(100):
        d = w + lam
        s = gt / d
        norm = math.sqrt(s @ s)
        if norm == 0.0:            # a zero gradient: no step
            break
        if norm <= radius * (1.0 + 1e-6):
            if norm >= radius * (1.0 - 1e-3) or lam <= max(0.0, -w[0]) * (1 + 1e-12) + 1e-300:
                break
        # phi(lam) = 1/|s| - 1/radius is nearly linear in lam: Newton steps converge fast
        dnorm = -(s @ (s / d)) / norm
        step = (norm - radius) / radius * norm / dnorm
        lam_new = lam - step
        lam = lam_new if lam_new > max(0.0, -w[0]) else 0.5 * (lam + max(0.0, -w[0]))
    p = -gt / (w + lam)
    norm = math.sqrt(p @ p)
    if w[0] < 0 and norm < radius * (1.0 - 1e-3):
        # the hard case (More and Sorensen): the gradient has (almost) no component along the
        # direction of negative curvature, as at a saddle point; the step goes along that
        # direction to the boundary, downhill in the model
        tau = math.sqrt(radius * radius - norm * norm)
        p[0] += tau if gt[0] + w[0] * p[0] <= 0 else -tau
    return v @ p


# A positive definite model whose Newton step leaves the trust region gets its step from
# Cholesky factorizations of H + lam 1 (More and Sorensen) on at least this many parameters,
# from an eigen-decomposition below (where that costs microseconds): on 623 parameters a
# factorization takes 3 ms, an eigen-decomposition 30 ms.
CHOLESKY_STEP_MIN = 40


def _trust_step_pd(h, g, radius, factor=None, lam=0.0):
    """The trust-region step of a positive definite h whose Newton step is longer than
    `radius`: the root lam > 0 of 1/|s(lam)| = 1/radius, s(lam) = -(h + lam 1)^-1 g, by Newton's
    method from below (lam = 0, with `factor` that of h; or a `lam` known to be below the root,
    as that of a larger radius), which increases lam monotonically to the root (More and
    Sorensen, 1983), with a Cholesky factorization per iteration. The step ends within 1e-3
    above the radius. Returns (step, lam), or None where a factorization fails or lam stops
    increasing (a barely positive definite h: the shift the root needs is below the rounding
    of h's diagonal): the caller then takes the eigen-decomposition.

    >>> h, g = np.diag([1.0, 4.0]), np.array([-2.0, -4.0])
    >>> s, lam = _trust_step_pd(h, g, 1.0)
    >>> bool(abs(np.linalg.norm(s) - 1.0) < 1e-3), bool(np.allclose(s, _trust_step(g, h, 1.0), atol=1e-3))
    (True, True)
    """
    if not radius > 0.0:
        return None
    if lam > 0.0:
        factor = None
    eye = np.eye(len(g))
    for _ in range(50):
        if factor is None:
            factor, info = dpotrf(h + lam * eye, lower=False, clean=False, overwrite_a=True)
            if info != 0:
                return None
        p, info = dpotrs(factor, g, lower=False)
        if info != 0:
            return None
        p = -p
        norm = math.sqrt(float(p @ p))
        if not math.isfinite(norm):
            return None
        if abs(norm - radius) <= 1e-3 * radius:
            return p, lam
        if norm < radius:
            return None             # below the root: only rounding gets here
        # |q|^2 = p' (h + lam)^-1 p, with R'R = h + lam: q = R'^-1 p
        q, info = dtrtrs(factor, p, lower=False, trans=1)
        if info != 0:
            return None
        qq = float(q @ q)
        if qq <= 0.0:
            return None
        new = lam + (norm / radius - 1.0) * norm * norm / qq
        if not new > lam:
            return None
        lam, factor = new, None
    return None


class _Model:
    """The quadratic model g.s + s.H.s/2 of one iteration: a Cholesky factorization when H is
    positive definite (the usual case, and all that a Newton step inside the trust region
    needs; a step to the trust region's boundary takes a few more on many parameters), the
    eigen-decomposition only when an indefinite H or a small one asks for it (for 600
    parameters a factorization takes 3 ms, an eigen-decomposition 30 ms)."""

    def __init__(self, h, g):
        self.h, self.g, self._eig = h, g, None
        # LAPACK directly: scipy's cho_factor wrapper costs more than the factorization at n ~ 10
        c, info = dpotrf(h, lower=False, clean=False, overwrite_a=False)
        self.pd = info == 0
        self._factor = c if self.pd else None
        self._shift = (0.0, 0.0)    # (radius, lam) of the last Cholesky trust-region step
        if self.pd:
            step, info = dpotrs(c, g, lower=False)
            self.newton_step = -step
            self.pd = info == 0 and bool(np.isfinite(self.newton_step).all())
        self.edm = -0.5 * float(g @ self.newton_step) if self.pd else np.inf
        if self.pd and self.edm < 0:      # rounding of a barely positive definite H
            self.pd, self.edm = False, np.inf

    def eig(self):
        if self._eig is None:
            w, v = np.linalg.eigh(self.h)
            self._eig = (w, v, v.T @ self.g)
        return self._eig

    def _abs_newton(self):
        """The Newton step of the absolute-eigenvalue Hessian, in the eigenbasis."""
        w, _, gt = self.eig()
        return -gt / np.maximum(np.abs(w), 1e-12 * max(abs(w).max(), 1e-300))

    def abs_newton_length(self):
        """Length of the Newton step of the absolute-eigenvalue Hessian."""
        step = self.newton_step if self.pd else self._abs_newton()
        return float(np.linalg.norm(step))

    def step(self, radius, saddle_free=False):
        """The trust-region step of radius `radius`. With `saddle_free`, an indefinite model
        takes the Newton step of its absolute-eigenvalue Hessian instead (cut to the radius),
        unless that predicts under a tenth of the trust-region step's decrease: near a saddle
        point, where only the trust-region step leaves along the negative curvature, or with a
        radius far beyond the |H| step (newton()'s first radius admits the |H| step)."""
        if self.pd and math.sqrt(float(self.newton_step @ self.newton_step)) <= radius:
            return self.newton_step
        if self.pd and self._eig is None and len(self.g) >= CHOLESKY_STEP_MIN:
            # a smaller radius than the last one (a rejected step) starts from its shift
            r0, lam0 = self._shift
            found = _trust_step_pd(self.h, self.g, radius, self._factor,
                                   lam0 if radius < r0 else 0.0)
            if found is not None:
                self._shift = (radius, found[1])
                return found[0]
        eig = self.eig()
        s_tr = _trust_step(self.g, self.h, radius, eig)
        if self.pd or not saddle_free:
            return s_tr
        p = self._abs_newton()
        norm = math.sqrt(float(p @ p))
        if norm > radius:
            p *= radius / norm
        s_abs = eig[1] @ p
        if self.decrease(s_abs) >= 0.1 * self.decrease(s_tr):
            return s_abs
        return s_tr

    def decrease(self, s):
        """The decrease the model predicts for the step s."""
        return -float(self.g @ s + 0.5 * s @ self.h @ s)


def pd_inverse(h):
    """h^-1 by Cholesky (LAPACK potrf and potri) if h is positive definite, else None: half the
    cost of an eigenvalue test plus an inverse (30 ms at 581 parameters).

    >>> pd_inverse(np.array([[2.0, 1.0], [1.0, 2.0]])) * 3
    array([[ 2., -1.],
           [-1.,  2.]])
    >>> pd_inverse(np.array([[1.0, 2.0], [2.0, 1.0]])) is None
    True
    """
    c, info = dpotrf(h, lower=False, clean=True, overwrite_a=False)
    if info != 0:
        return None
    inv, info = dpotri(c, lower=False)
    if info != 0:
        return None
    inv = np.triu(inv)
    inv += np.triu(inv, 1).T
    return inv if np.isfinite(inv).all() else None


def degenerate_minimum(g, h, d1, x, tr, goal):
    """Whether x (free parameters) is a degenerate minimum: with the parameters on a limit that
    the gradient pushes outwards held there, the remaining Hessian is positive semi-definite up
    to rounding (its most negative eigenvalue above -1e-6 of its largest) and the remaining
    gradient is at the EDM `goal` in units of their curvatures. Returns (indices of the
    parameters not held, indices of those along directions without curvature), or None.

    >>> from tape.newton import Transform
    >>> tr = Transform([(-10.0, 10.0), (-10.0, 10.0)])
    >>> x = np.array([1.0, 2.0]); d1 = tr.to_external(tr.to_internal(x))[1]
    >>> degenerate_minimum(np.array([1e-9, 0.0]), np.diag([4.0, 0.0]), d1, x, tr, 1e-5)
    ([0, 1], [1])
    >>> degenerate_minimum(np.array([1e-9, 0.0]), np.diag([4.0, -1.0]), d1, x, tr, 1e-5) is None
    True
    """
    rel = np.abs(d1) / np.where(tr.both, tr.half, 1.0)
    at = (tr.both | tr.lower | tr.upper) & (rel < 1e-2)
    at_hi = tr.upper | (tr.both & (x - tr.lo > tr.hi - x))
    held = at & np.where(at_hi, g < 0, g > 0)
    inner = np.flatnonzero(~held)
    if not inner.size:
        return [], []
    hi, gi = h[np.ix_(inner, inner)], g[inner]
    w, v = np.linalg.eigh(0.5 * (hi + hi.T))
    top = max(abs(w).max(), 1e-300)
    if w[0] < -1e-6 * top:
        return None
    curvature = np.sqrt(np.maximum(np.diag(hi), 1e-12 * top))
    if np.max(np.abs(gi) / curvature) > math.sqrt(2.0 * goal):
        return None
    flat = np.abs(v[:, w <= 1e-6 * top]) > 1e-8
    return [int(i) for i in inner], [int(inner[i]) for i in np.flatnonzero(flat.any(axis=1))]


def _sr1(b, s, y):
    """Symmetric rank-one update of the Hessian model b by the secant pair (s, y), skipped when
    the denominator is too small (the standard safeguard)."""
    r = y - b @ s
    den = float(r @ s)
    if abs(den) <= 1e-8 * math.sqrt(float(r @ r) * float(s @ s)) or den == 0.0:
        return b
    return b + np.outer(r, r) / den


# The Hessian refresh policy (see newton()): an accepted step whose actual decrease is outside
# these multiples of the predicted one gets a new exact Hessian; the trust radius doubles after
# a step to the boundary with a ratio above EXPAND_RHO; the errors come from an exact Hessian
# evaluated where the EDM was below NEAR * edm_goal.
RHO_GOOD = (0.25, 2.0)
EXPAND_RHO = 0.9
NEAR = 100.0
# Trial points at most once the model is exact within EDM NEAR * edm_goal: a smooth function gets
# below edm_goal in one to three; one whose value is not smooth at that scale (rounding noise, as
# 3L eRJR's NLL had before its Poisson terms were rewritten: its CLs fits crawled through 230 and
# 300 gradients) ends within NEAR * edm_goal, valid, with a message, instead.
NEAR_EVALUATIONS = 20
# Far from the minimum, until a step lowers the function by less than FAR_DECREASE * errordef:
# an indefinite model takes the absolute-eigenvalue Newton step (SADDLE_FREE; from the tutorial
# fit's start at 1e6 events it lowers the NLL by 2410 of 2435 where the trust-region step of the
# same length lowers it by 1866), and the models' Hessians come from a subsample of about the
# first size in FAR_EVENTS with at least 4 times as many events (the exact Hessian takes over
# near the minimum, and gives the errors). Newton / Hessian-seeded Migrad time on the tutorial
# model, median of 6 datasets from the same start: 1.15 -> 0.89 at 1e5 (16384 of 1e5), 1.05 ->
# 0.80 at 3e5 and 1.01 -> 0.80 at 1e6 (65536; 16384 gave 0.91 and 0.82).
SADDLE_FREE = True
FAR_DECREASE = 10.0
FAR_EVENTS = (65536, 16384)


def far_function(f):
    """The subsample of f whose Hessians guide Newton far from the minimum (see FAR_EVENTS),
    or None: f has too few events, and Newton starts with its exact Hessian."""
    from .fit import _seed_function
    return _seed_function(f, FAR_EVENTS)


def newton(setup, max_iter=200, edm_goal=None, *, start=None, cb=None, near_goal=None,
           min_steps=0, seed_hessian=None, final_hessian=True):
    """Trust-region Newton on a ``tape.fit.FitSetup``; returns a FitResult.

    Each iteration solves the trust-region subproblem of the quadratic model in Minuit's internal
    coordinates, scaled to the parameters' curvatures (a step of length 1 is of the order of one
    standard deviation). The model's Hessian is exact where it was last evaluated and is carried
    to later points by symmetric rank-one (SR1) secant updates from the exact gradients, so most
    steps cost one value-and-gradient. The exact Hessian is evaluated again where the model
    predicted the last step badly, where the model is not positive definite, and where the model
    first puts the minimum within NEAR * edm_goal: the steps from there on need no further
    Hessian. Far from the minimum on many events, these Hessians come from a subsample and an
    indefinite model takes its absolute-eigenvalue step (see FAR_DECREASE). The fit ends when
    the EDM is below `edm_goal` (default 1e-7 * errordef): every method then ends at the same
    minimum to rounding level. The errors come from the exact
    Hessian at the end point (`final_hessian`; one more Hessian where the last one was
    evaluated a step before: near a degenerate minimum the covariance changes by tens of
    percent over a hundredth of a standard deviation), or with ``final_hessian=False`` from
    the last one evaluated (within EDM NEAR * edm_goal of the end point), when only the
    minimum matters.

    `start` (default ``setup.start``) and `cb` (a ``tape.fit._Counted``, whose cache and call
    counts are shared) let the Migrad path finish with these steps from Migrad's end point, with
    `near_goal` (default NEAR * edm_goal) set to Minuit's tolerance, and ``min_steps=1`` for at
    least one Newton step. `seed_hessian` (n x n, e.g. a neighbouring fit's ``hessian``) is the
    first model instead of the exact Hessian at the start.
    """
    f, names, free = setup.f, setup.names, setup.free
    errordef = setup.errordef
    edm_goal = 1e-7 * errordef if edm_goal is None else edm_goal
    near_goal = NEAR * edm_goal if near_goal is None else near_goal
    if cb is None:
        from .fit import _Counted
        cb = _Counted(f, seed_pd=False)
    tr = setup.transform
    x_full = np.array(setup.start if start is None else start, dtype=np.float64)
    t = tr.to_internal(x_full[free])
    # (without fixed parameters, the free ones are the vectors themselves: no index copies)
    all_free = free.size == x_full.size
    ix = np.ix_(free, free)

    evaluations = [0]           # trial points so far (see NEAR_EVALUATIONS)
    # whether value, gradient and Hessian come from one pass over the events (few parameters)
    one_pass = bool(getattr(cb.f, "hessian_in_one_pass", False))
    near_since = None

    def evaluate(t, exact=None, hessian=False):
        """(external point, value, gradient of the free parameters, dx/dt, d2x/dt2) at t;
        with `hessian`, the exact Hessian there comes from the same pass (``exact_hessian``
        then finds it cached): for points where it will be asked for."""
        x, d1, d2 = tr.to_external(t)
        # the start point itself, not its round trip through the internal coordinates
        x = x if exact is None else exact.copy()
        if all_free:
            xf = x
        else:
            xf = x_full.copy()
            xf[free] = x
        evaluations[0] += 1
        v, g = cb.value_grad_hessian(xf)[:2] if hessian else cb.value_and_grad(xf)
        return xf, v, (g if all_free else g[free]), d1, d2

    def exact_hessian(xf):
        h = cb.raw_hessian(xf)
        h = h if all_free else h[ix]
        return 0.5 * (h + h.T)

    # far from the minimum (until a step lowers the function by less than FAR_DECREASE *
    # errordef), the models' Hessians come from a subsample on many events, as Migrad's seed
    f_sub = far_function(f) if seed_hessian is None and start is None else None
    far = f_sub is not None and free.size > 0
    # whether the last step lowered the function by FAR_DECREASE * errordef or more (a fit
    # from a user's start begins far; Migrad's finish and scans from a neighbour's minimum not)
    big = start is None and seed_hessian is None

    def subsample_hessian(xf):
        cb.nhess += 1
        h = f_sub.hessian(xf)
        h = h if all_free else h[ix]
        return 0.5 * (h + h.T)

    xf, v, g, d1, d2 = evaluate(t, x_full[free])
    message, valid, edm = "", False, np.inf
    h_exact = None              # the last exact Hessian (never a subsample's)
    if seed_hessian is not None and free.size:
        b = np.array(seed_hessian, dtype=np.float64)[ix]
        b = 0.5 * (b + b.T)
        b_here = False          # a model only: the exact Hessian comes where it is needed
    elif far:
        b, b_here = subsample_hessian(xf), False
    else:
        h_exact = exact_hessian(xf) if free.size else np.zeros((0, 0))
        b = h_exact.copy()      # the Hessian model: exact at the last Hessian, then SR1-updated
        b_here = True           # whether b is the exact Hessian at the current point
    b_fresh = b_here or far     # whether b is a Hessian (exact or subsample) at the current point
    near = False                # whether h_exact was evaluated where the EDM < near_goal
    refresh = False
    radius = scale = None
    for it in range(max_iter):
        if not free.size:
            valid, edm = True, 0.0
            break
        gi = d1 * g
        hi = b * np.outer(d1, d1)
        hi.flat[::free.size + 1] += g * d2
        if scale is None or b_fresh:
            dh = np.abs(np.diag(hi))
            # floored relative to the largest: a parameter without curvature at this point
            # (e.g. a mean while its fraction is 0) must not get a scale of 1e-150
            scale = np.sqrt(np.maximum(dh, max(1e-12 * dh.max(), 1e-300)))
        # the model in scaled coordinates (the EDM does not depend on the scaling)
        gu = gi / scale
        hu = hi / np.outer(scale, scale)     # symmetric: b is (exact Hessians symmetrized, SR1)
        model = _Model(hu, gu)
        edm = model.edm
        if b_here and edm < near_goal:
            near = True
            near_since = evaluations[0] if near_since is None else near_since
        if near and edm < near_goal and evaluations[0] - near_since > NEAR_EVALUATIONS:
            message = (f"{NEAR_EVALUATIONS} steps after the exact Hessian within EDM "
                       f"{near_goal:.2g}: the function is not quadratic at this scale")
            break
        if edm < edm_goal and final_hessian and not b_here:
            # the model (SR1-updated since the last exact Hessian) puts the end here: the exact
            # Hessian at this point checks that, and gives the errors
            h_exact = exact_hessian(xf)
            b, b_here, b_fresh, refresh, far = h_exact.copy(), True, True, False, False
            continue
        if edm < edm_goal and near:
            valid = True
            if min_steps and it == 0:
                # one Newton step all the same (kept if it lowers the function): the rounding
                # level of the gradient, not only of the EDM
                s = model.newton_step / scale
                # (the errors need the exact Hessian at the end point)
                xn, vn, gn, d1n, d2n = evaluate(t + s, hessian=final_hessian)
                if vn < v:
                    t, xf, v, g, d1, d2 = t + s, xn, vn, gn, d1n, d2n
                    b_here = b_fresh = False
            break
        # a subsample's model that puts the minimum near: the exact Hessian from here on
        sub_near = b_fresh and not b_here and edm < near_goal
        if sub_near or (not b_fresh and (refresh or not model.pd or
                                         (edm < near_goal and not near))):
            if far and not sub_near:
                b, b_fresh, refresh = subsample_hessian(xf), True, False
            else:
                far = False
                h_exact = exact_hessian(xf)
                b, b_here, b_fresh, refresh, near = h_exact.copy(), True, True, False, False
                near_since = None
            continue
        if radius is None:
            # the first radius admits the Newton step of the absolute-eigenvalue Hessian
            radius = max(1.0, model.abs_newton_length())
        accepted = False
        for attempt in range(60):
            su = model.step(radius, saddle_free=SADDLE_FREE and big)
            s = su / scale
            predicted = model.decrease(su)
            # a Newton step of an exact model within EDM near_goal of the minimum ends within
            # edm_goal, where the exact Hessian is evaluated (see above); and where the Hessian
            # takes the same single pass as the gradient, every step of a positive definite
            # model between the far phase and the first exact model within near_goal gets it
            # (the first trial point of each iteration only: one the trust region rejects wastes
            # its Hessian; a function noisy at that scale rejects many): an exact model costs
            # less than the steps an SR1 model adds (Newton on the tutorial model, 6 datasets
            # of 1e5 events: 111 -> 98 ms; a 21-point profile 90 -> 78 ms). Not after an
            # indefinite model: on 41 2000-event toys, exact models there led Newton to the
            # saddle where both Gaussians coincide 3 times (SR1: once, as with pd models only)
            fused = attempt == 0 and (
                (b_here and near and final_hessian and model.pd and su is model.newton_step) or
                (one_pass and not far and model.pd and not near))
            xn, vn, gn, d1n, d2n = evaluate(t + s, hessian=fused)
            actual = v - vn
            rho = actual / predicted if predicted > 0 else -1.0
            nsu = math.sqrt(float(su @ su))
            if not math.isfinite(vn) or rho < 0.25:
                radius = 0.25 * nsu
            elif rho > EXPAND_RHO and nsu > 0.99 * radius:
                radius = 2.0 * radius
            finite = math.isfinite(vn)
            if finite and np.isfinite(gn).all():
                # the secant pair, in external coordinates, updates the external Hessian model
                b = _sr1(b, (xn - xf) if all_free else (xn[free] - xf[free]), gn - g)
                b_here = b_fresh = False
            if finite and rho > 1e-4:
                t, xf, v, g, d1, d2 = t + s, xn, vn, gn, d1n, d2n
                accepted = True
                big = actual > FAR_DECREASE * errordef
                far = far and big
                # a badly predicted step (with a decrease above rounding): a new exact Hessian
                refresh = predicted > near_goal and not RHO_GOOD[0] < rho < RHO_GOOD[1]
                if fused and np.isfinite(gn).all():
                    # the exact Hessian here came with the gradient: the model from now on
                    h_new = exact_hessian(xf)
                    if np.isfinite(h_new).all():
                        h_exact = h_new
                        b, b_here, b_fresh, refresh = h_exact.copy(), True, True, False
                break
            if radius < 1e-14 * max(1.0, np.linalg.norm(t * scale)):
                break
        if not accepted:
            message = "no step lowers the function any more (trust region collapsed)"
            break
    else:
        message = f"no convergence in {max_iter} iterations"
    if not valid and near and edm < near_goal:
        # stopped short of edm_goal (rounding, or the iteration limit) but within near_goal
        valid = True
        message = f"EDM {edm:.2g} is above the goal {edm_goal:.2g} ({message})"
    n = xf.size
    cov = np.zeros((n, n))
    limit_errors = None
    degenerate = False
    if free.size:
        # errors from the exact Hessian: the last one if it was evaluated at the end point or
        # where the EDM was below near_goal, else one more at the end point
        last = near or b_here if not final_hessian else b_here
        h_free = h_exact if last and h_exact is not None else exact_hessian(xf)
        if not np.all(np.isfinite(h_free)):
            valid = False
            message = message or "the Hessian is not finite at the end point"
            cov[ix] = np.nan
        elif (inv := pd_inverse(h_free)) is not None:
            cov[ix] = 2.0 * errordef * inv
        else:
            # a minimum on a limit: there the external Hessian need not be positive definite,
            # but the internal one (with the transformation's curvature term) is; errors then
            # go through the transformation, as Minuit's do
            hi = d1[:, None] * h_free * d1[None, :] + np.diag(g * d2)
            hi = 0.5 * (hi + hi.T)
            rel = np.abs(d1) / np.where(tr.both, tr.half, 1.0)
            at = [names[free[i]] for i in np.flatnonzero((tr.both | tr.lower | tr.upper)
                                                          & (rel < 1e-2))]
            wi = np.linalg.eigvalsh(hi) if np.all(np.isfinite(hi)) else np.array([-1.0])
            if valid and at and wi[0] > 1e-8 * wi[-1]:
                cov_int = 2.0 * errordef * np.linalg.inv(hi)
                cov[ix] = d1[:, None] * cov_int * d1[None, :]
                # the errors as Minuit's: the internal error mapped through the transformation
                # both ways and averaged (the Jacobian alone is 0 on the limit)
                sig = np.sqrt(np.diag(cov_int))
                up, down = tr.to_external(t + sig)[0], tr.to_external(t - sig)[0]
                limit_errors = 0.5 * (np.abs(up - xf[free]) + np.abs(down - xf[free]))
                message = (message or f"parameters at a limit: {', '.join(at)} (errors through "
                           "the limit transformation, as Minuit's)")
            elif start is None and (found := degenerate_minimum(
                    g, h_free, d1, xf[free], tr, near_goal)) is not None:
                # no step lowers the function and nothing but flat directions and parameters held
                # by their limits keep the Hessian from being positive definite: a minimum, as
                # Minuit would report it, with errors from the Hessian of the other parameters
                # and none along flat directions or for the held ones (the Migrad path keeps
                # Minuit's result there instead, see tape.fit)
                inner, flat = found
                valid, degenerate = True, True
                held = [names[free[i]] for i in range(free.size) if i not in set(inner)]
                message = ("a degenerate minimum: the exact Hessian is singular"
                           + (f" along {', '.join(names[free[i]] for i in flat)}" if flat else "")
                           + (f", with {', '.join(held)} at a limit" if held else "")
                           + " (no error there)" + (f"; {message}" if message else ""))
                keep = free[inner]
                cov[np.ix_(keep, keep)] = 2.0 * errordef * np.linalg.pinv(
                    h_free[np.ix_(inner, inner)])
                nan_free = sorted(set(range(free.size)) - set(inner) | set(flat))
            else:
                valid = False
                message = message or "the Hessian at the end point is not positive definite"
                cov[ix] = 2.0 * errordef * np.linalg.pinv(h_free)
    if not np.isfinite(v):
        valid, message = False, "the function is not finite at the end point"
    errors = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    if limit_errors is not None:
        errors[free] = limit_errors
    if degenerate:
        errors[free[nan_free]] = np.nan
    elif free.size and not valid and np.all(np.isfinite(h_free)):
        # parameters that move along a direction without positive curvature have no error
        w, vecs = np.linalg.eigh(h_free)
        flat = w <= 1e-12 * max(abs(w).max(), 1e-300)
        errors[free[np.any(np.abs(vecs[:, flat]) > 1e-8, axis=1)]] = np.nan

    def make_minuit():
        from .fit import _Counted, _minuit
        mcb = _Counted(f, seed_pd=True, limits=setup.limits)
        m, _ = _minuit(setup, mcb, xf, True, 0, None)
        m.migrad()
        return m

    hessian = np.zeros((n, n))
    if free.size:
        hessian[ix] = h_free
    return FitResult(names=names, values=xf, errors=errors, covariance=cov, fval=v, edm=edm,
                     valid=valid, message=message, nfcn=cb.nfcn, ngrad=cb.ngrad, nhess=cb.nhess,
                     method="newton", fixed=setup.fixed, minuit_factory=make_minuit,
                     hessian=hessian)
