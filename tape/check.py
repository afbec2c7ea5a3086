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
        Tolerances of the comparison (finite differences are good to ~1e-8 relative).

    Examples
    --------
    >>> import numpy as np, tape
    >>> f = tape.record(lambda p: np.exp(p[0]) * p[1], [0.0, 1.0])
    >>> tape.check_grads(f, [0.3, 2.0])
    """
    p = np.asarray(p, dtype=np.float64)
    g = f.grad(p)
    num = numerical_grad(f, p, eps)
    if not np.allclose(g, num, rtol=rtol, atol=atol):
        raise AssertionError(f"reverse gradient {g} differs from central differences {num}")
    rng = np.random.default_rng(seed)
    for _ in range(n_directions):
        v = rng.normal(size=p.size)
        d = f.jvp(p, v)
        h = eps * max(1.0, float(np.max(np.abs(p))))
        fd = (f(p + h * v) - f(p - h * v)) / (2 * h)
        if not np.isclose(d, fd, rtol=rtol, atol=atol * max(1.0, np.abs(v).sum())):
            raise AssertionError(f"forward derivative {d} along {v} differs from central "
                                 f"differences {fd}")
        if not np.isclose(d, g @ v, rtol=1e-9, atol=atol):
            raise AssertionError(f"forward derivative {d} differs from gradient . v = {g @ v}")
