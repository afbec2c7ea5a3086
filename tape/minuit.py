"""iminuit's Minuit with its covariance matrix copied in one piece instead of element by element.

After every MIGRAD and HESSE, iminuit copies Minuit2's covariance into a numpy matrix with one
Python-level access per element: 80 ms for the 581 free parameters of the 3L resonance
workspace (a fifth of its fit), 3.6 ms for 1Lbb's 120 (twice per fit). Minuit2's matrix pickles
as its packed lower triangle; ``Minuit`` here unpacks that with numpy, checks it against a few
elements read the usual way (a changed storage in a later iminuit falls back to iminuit's own
copy, never to a wrong matrix), and is otherwise iminuit's ``Minuit``.
"""
import functools

import numpy as np
from iminuit import Minuit as _IminuitMinuit
from iminuit import util as _util

__all__ = ["Minuit"]


def unpack_covariance(cov):
    """The (k, k) numpy array of a Minuit2 ``MnUserCovariance``, or None if its pickled form is
    not the packed lower triangle this module knows (checked on the diagonal's ends and an
    off-diagonal element).

    >>> from iminuit import Minuit
    >>> m = Minuit(lambda x, y: (x - 1) ** 2 + (x - y) ** 2 / 4, 0.0, 0.0)
    >>> m.errordef = 1
    >>> _ = m.migrad()
    >>> bool(np.allclose(unpack_covariance(m._last_state.covariance), m.covariance))
    True
    """
    try:
        packed, k = cov.__getstate__()
        packed = np.asarray(packed, dtype=np.float64)
        k = int(k)
    except Exception:
        return None
    if k != cov.nrow or packed.shape != (k * (k + 1) // 2,):
        return None
    out = np.empty((k, k))
    rows, cols = _tril(k)
    out[rows, cols] = packed
    out[cols, rows] = packed
    for i, j in {(0, 0), (k - 1, k - 1), (k - 1, 0), (k // 2, k // 3)}:
        if k and out[i, j] != cov[i, j]:
            return None
    return out


@functools.lru_cache(maxsize=16)
def _tril(k):
    """np.tril_indices(k), kept: a toy study unpacks two covariances of one size per fit."""
    rows, cols = np.tril_indices(k)
    rows.setflags(write=False)
    cols.setflags(write=False)
    return rows, cols


class Minuit(_IminuitMinuit):
    """``iminuit.Minuit`` whose covariance copy after MIGRAD and HESSE costs O(n^2) in numpy
    rather than O(n^2) Python calls."""

    def _make_covariance(self):
        state = self._last_state
        if not state.has_covariance:
            self._covariance = None
            return
        cov = unpack_covariance(state.covariance)
        if cov is None:
            return super()._make_covariance()
        m = _util.Matrix(self._var2pos)
        if cov.shape[0] < self.npar:
            free = [p.number for p in state if not p.is_fixed]
            if len(free) != cov.shape[0]:
                return super()._make_covariance()
            m.fill(0.0)
            np.asarray(m)[np.ix_(free, free)] = cov
        else:
            np.asarray(m)[...] = cov
        self._covariance = m
