"""Derivative checks against finite differences, for our ops and for users' own functions.

As autograd's and JAX's ``check_grads``: compare the reverse gradient and the forward directional
derivative with central differences along random directions.
"""
import numpy as np

__all__ = ["numerical_grad", "check_grads"]


def numerical_grad(fun, p, eps=1e-6):
    """Central-difference gradient of scalar ``fun`` at ``p`` (step ``eps`` scaled by |p|)."""
    p = np.asarray(p, dtype=np.float64)
    g = np.empty_like(p)
    for i in range(p.size):
        h = eps * max(1.0, abs(p[i]))
        a, b = p.copy(), p.copy()
        a[i] += h
        b[i] -= h
        g[i] = (fun(a) - fun(b)) / (2 * h)
    return g


def check_grads(f, p, *, rtol=1e-6, atol=1e-8, eps=1e-6, n_directions=3, seed=0):
    """Assert that ``f.grad`` and ``f.jvp`` agree with central differences at ``p``.

    Parameters
    ----------
    f : tape.Function
    p : array_like
        Point to check at.
    rtol, atol : float
        Tolerances of the comparison. Central differences carry a rounding error of about
        1e-16 |f| / step, so ``atol`` is raised to ``1e-9 |f(p)|`` for large function values.

    Examples
    --------
    >>> import numpy as np, tape
    >>> f = tape.record(lambda p: np.exp(p[0]) * p[1], [0.0, 1.0])
    >>> tape.check_grads(f, [0.3, 2.0])
    """
    p = np.asarray(p, dtype=np.float64)
    atol = max(atol, 1e-9 * abs(f(p)))
    g = f.grad(p)
    num = numerical_grad(f, p, eps)
    if not np.allclose(g, num, rtol=rtol, atol=atol):
        raise AssertionError(f"reverse gradient {g} differs from central differences {num}")
    rng = np.random.default_rng(seed)
    scale = eps * np.maximum(1.0, np.abs(p))
    for _ in range(n_directions):
        u = rng.normal(size=p.size) * scale      # a step of relative size eps in every parameter
        d = f.jvp(p, u)
        fd = (f(p + u) - f(p - u)) / 2.0
        if not np.isclose(d, fd, rtol=rtol, atol=atol * np.abs(u / scale).sum() * eps):
            raise AssertionError(f"forward derivative {d} along {u} differs from central "
                                 f"differences {fd}")
        v = u / scale
        d = f.jvp(p, v)
        if not np.isclose(d, g @ v, rtol=1e-9, atol=atol):
            raise AssertionError(f"forward derivative {d} differs from gradient . v = {g @ v}")
