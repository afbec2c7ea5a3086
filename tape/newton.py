"""Trust-region Newton minimization on exact gradients and Hessians, with Minuit-style limits.

Bounded parameters are mapped to unbounded internal ones as Minuit does (sin for two-sided
limits, sqrt for one-sided); the internal Hessian is the exact chain rule J H J + diag(g x''),
including the gradient term. Each step solves the trust-region subproblem through an eigen-
decomposition (shifted Newton step, More-Sorensen style), so an indefinite Hessian is handled.
"""
import math

import numpy as np

from .result import FitResult

__all__ = ["newton", "Transform"]


class Transform:
    """Minuit's external <-> internal parameter transformation, with first and second derivatives."""

    def __init__(self, limits):
        self.limits = limits

    def to_internal(self, x):
        out = np.empty_like(x)
        for i, (v, (lo, hi)) in enumerate(zip(x, self.limits)):
            if math.isfinite(lo) and math.isfinite(hi):
                out[i] = math.asin(min(1.0, max(-1.0, 2.0 * (v - lo) / (hi - lo) - 1.0)))
            elif math.isfinite(lo):
                out[i] = math.sqrt(max(0.0, (v - lo + 1.0) ** 2 - 1.0))
            elif math.isfinite(hi):
                out[i] = math.sqrt(max(0.0, (hi - v + 1.0) ** 2 - 1.0))
            else:
                out[i] = v
        return out

    def to_external(self, t):
        """(x, dx/dt, d2x/dt2) elementwise."""
        x, d1, d2 = np.empty_like(t), np.empty_like(t), np.empty_like(t)
        for i, (v, (lo, hi)) in enumerate(zip(t, self.limits)):
            if math.isfinite(lo) and math.isfinite(hi):
                h = 0.5 * (hi - lo)
                x[i] = lo + h * (math.sin(v) + 1.0)
                d1[i], d2[i] = h * math.cos(v), -h * math.sin(v)
            elif math.isfinite(lo) or math.isfinite(hi):
                s = math.sqrt(v * v + 1.0)
                sign = 1.0 if math.isfinite(lo) else -1.0
                x[i] = (lo - 1.0 + s) if sign > 0 else (hi + 1.0 - s)
                d1[i], d2[i] = sign * v / s, sign / (s * s * s)
            else:
                x[i], d1[i], d2[i] = v, 1.0, 0.0
        return x, d1, d2


def _trust_step(g, h, radius):
    """argmin_s g.s + s.H.s/2 subject to |s| <= radius (eigen-decomposition, then Newton's method
    on the secular equation 1/|s(lam)| = 1/radius for the shift lam, as More and Sorensen)."""
    w, v = np.linalg.eigh(0.5 * (h + h.T))
    gt = v.T @ g
    if w[0] > 0:
        s = -gt / w
        if math.sqrt(s @ s) <= radius:
            return v @ s
    lam = max(0.0, -w[0]) + 1e-12 * max(1.0, abs(w).max())
    for _ in range(100):
        d = w + lam
        s = gt / d
        norm = math.sqrt(s @ s)
        if norm <= radius * (1.0 + 1e-6):
            if norm >= radius * (1.0 - 1e-3) or lam <= max(0.0, -w[0]) * (1 + 1e-12) + 1e-300:
                break
        # phi(lam) = 1/|s| - 1/radius is nearly linear in lam: Newton steps converge fast
        dnorm = -(s @ (s / d)) / norm
        step = (norm - radius) / radius * norm / dnorm
        lam_new = lam - step
        lam = lam_new if lam_new > max(0.0, -w[0]) else 0.5 * (lam + max(0.0, -w[0]))
    return v @ (-gt / (w + lam))


def newton(setup, max_iter=200, edm_goal=None):
    """Trust-region Newton on a ``tape.fit.FitSetup``; returns a FitResult."""
    f, names, free = setup.f, setup.names, setup.free
    errordef = setup.errordef
    edm_goal = 1e-7 * errordef if edm_goal is None else edm_goal
    tr = Transform([setup.limits[i] for i in free])
    x_full = setup.start.copy()
    t = tr.to_internal(x_full[free])
    nfcn = ngrad = nhess = 0

    def evaluate(t):
        nonlocal nfcn, ngrad
        x, d1, d2 = tr.to_external(t)
        xf = x_full.copy()
        xf[free] = x
        v, g = f.value_and_grad(xf)
        nfcn += 1
        ngrad += 1
        return xf, v, g, d1, d2

    xf, v, g, d1, d2 = evaluate(t)
    radius = max(1.0, np.linalg.norm(t)) * 0.5
    message, valid, edm = "", False, np.inf
    for it in range(max_iter):
        h = f.hessian(xf)
        nhess += 1
        gi = d1 * g[free]
        hi = (d1[:, None] * h[np.ix_(free, free)] * d1[None, :]) + np.diag(g[free] * d2)
        w = np.linalg.eigvalsh(0.5 * (hi + hi.T)) if free.size else np.ones(1)
        if w[0] > 0:
            edm = 0.5 * float(gi @ np.linalg.solve(hi, gi))
            if edm < edm_goal:
                valid = True
                break
        if not free.size:
            valid, edm = True, 0.0
            break
        accepted = False
        for _ in range(60):
            s = _trust_step(gi, hi, radius)
            predicted = -(gi @ s + 0.5 * s @ hi @ s)
            xn, vn, gn, d1n, d2n = evaluate(t + s)
            actual = v - vn
            rho = actual / predicted if predicted > 0 else -1.0
            if not np.isfinite(vn) or rho < 0.25:
                radius = 0.25 * np.linalg.norm(s)
            elif rho > 0.75 and np.linalg.norm(s) > 0.99 * radius:
                radius *= 2.0
            if np.isfinite(vn) and rho > 1e-4:
                t, xf, v, g, d1, d2 = t + s, xn, vn, gn, d1n, d2n
                accepted = True
                break
            if radius < 1e-14 * max(1.0, np.linalg.norm(t)):
                break
        if not accepted:
            message = "no step lowers the function any more (trust region collapsed)"
            break
    else:
        message = f"no convergence in {max_iter} iterations"
    h = f.hessian(xf)
    nhess += 1
    h_free = h[np.ix_(free, free)]
    n = xf.size
    cov = np.zeros((n, n))
    if free.size:
        if np.all(np.linalg.eigvalsh(0.5 * (h_free + h_free.T)) > 0):
            cov[np.ix_(free, free)] = 2.0 * errordef * np.linalg.inv(h_free)
        else:
            valid = False
            message = message or "the Hessian at the end point is not positive definite"
            cov[np.ix_(free, free)] = 2.0 * errordef * np.linalg.pinv(h_free)
    if not np.isfinite(v):
        valid, message = False, "the function is not finite at the end point"
    errors = np.sqrt(np.clip(np.diag(cov), 0.0, None))

    def make_minuit():
        from .fit import _Counted, _minuit
        cb = _Counted(f, seed_pd=True, limits=setup.limits)
        m = _minuit(setup, cb, xf, True, 0, None)
        m.migrad()
        return m

    return FitResult(names=names, values=xf, errors=errors, covariance=cov, fval=v, edm=edm,
                     valid=valid, message=message, nfcn=nfcn, ngrad=ngrad, nhess=nhess,
                     method="newton", fixed=setup.fixed, minuit_factory=make_minuit)
