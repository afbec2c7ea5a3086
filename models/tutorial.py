"""The RooFit tutorial model, written as plain numpy: the benchmark and demo likelihood.

x in [0, 10]; two Gaussians with a shared mean (mu = 5, widths 0.5 and 1.0) mixed with fraction
0.8; a second-order Chebychev background (a0 = 0.5, a1 = 0.2) with fraction 0.5; every pdf
normalized over [0, 10] with its exact integral. The NLL below is ordinary numpy/scipy code: the
same function evaluates on arrays directly and records on the tape unchanged.
"""
import math

import numpy as np
from scipy import special

__all__ = ["NAMES", "TRUTH", "LIMITS", "LO", "HI", "nll", "sample"]

LO, HI = 0.0, 10.0
NAMES = ("mu", "sigma1", "sigma2", "sig1frac", "a0", "a1", "bkgfrac")
TRUTH = np.array([5.0, 0.5, 1.0, 0.8, 0.5, 0.2, 0.5])
LIMITS = [(0.0, 10.0), (0.1, 5.0), (0.1, 5.0), (0.0, 1.0), (-1.0, 1.0), (-1.0, 1.0), (0.0, 1.0)]
_SQRT2 = math.sqrt(2.0)
_SQRT_PI_2 = math.sqrt(math.pi / 2.0)


def nll(p, x):
    """Negative log-likelihood of the tutorial model for events `x` at parameters `p`.

    >>> import numpy as np
    >>> from models import tutorial
    >>> x = tutorial.sample(1000, np.random.default_rng(0))
    >>> bool(np.isfinite(tutorial.nll(tutorial.TRUTH, x)))
    True
    """
    mu, sigma1, sigma2, sig1frac, a0, a1, bkgfrac = p

    def gauss(sigma):
        norm = sigma * _SQRT_PI_2 * (special.erf((HI - mu) / (sigma * _SQRT2))
                                     - special.erf((LO - mu) / (sigma * _SQRT2)))
        return np.exp(-0.5 * ((x - mu) / sigma) ** 2) / norm

    t = (2.0 * x - (HI + LO)) / (HI - LO)
    cheb = (1.0 + a0 * t + a1 * (2.0 * t * t - 1.0)) / ((HI - LO) / 2.0 * (2.0 - 2.0 * a1 / 3.0))
    sig = sig1frac * gauss(sigma1) + (1.0 - sig1frac) * gauss(sigma2)
    return -np.sum(np.log(bkgfrac * cheb + (1.0 - bkgfrac) * sig))


def sample(n, rng, p=TRUTH):
    """`n` events of the tutorial model at parameters `p` (component choice, then accept-reject)."""
    mu, sigma1, sigma2, sig1frac, a0, a1, bkgfrac = p
    comp = rng.choice(3, size=n, p=[bkgfrac, (1 - bkgfrac) * sig1frac, (1 - bkgfrac) * (1 - sig1frac)])
    out = np.empty(n)
    for k, sigma in ((1, sigma1), (2, sigma2)):
        idx = np.flatnonzero(comp == k)
        filled = 0
        while filled < idx.size:
            draw = rng.normal(mu, sigma, 2 * (idx.size - filled) + 16)
            draw = draw[(draw >= LO) & (draw <= HI)][: idx.size - filled]
            out[idx[filled:filled + draw.size]] = draw
            filled += draw.size
    idx = np.flatnonzero(comp == 0)
    fmax = 1.0 + abs(a0) + abs(a1) * 1.0 + abs(a1)  # bound of 1 + a0 t + a1 (2t^2 - 1) on [-1, 1]
    filled = 0
    while filled < idx.size:
        m = 2 * (idx.size - filled) + 16
        x = rng.uniform(LO, HI, m)
        t = (2.0 * x - (HI + LO)) / (HI - LO)
        keep = rng.uniform(0.0, fmax, m) < 1.0 + a0 * t + a1 * (2.0 * t * t - 1.0)
        x = x[keep][: idx.size - filled]
        out[idx[filled:filled + x.size]] = x
        filled += x.size
    return out
