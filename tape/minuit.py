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

__all__ = ["Minuit", "start_internal", "write_start_covariance"]


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


def _state_tuple(m):
    """Minuit2's pickled start state (iminuit 2.33: a 10-tuple whose 8th and 10th items are the
    external and internal covariance, the 9th the internal values), or None if it is not that."""
    from iminuit._core import MnUserCovariance
    try:
        state = m._last_state.__getstate__()
    except Exception:
        return None
    if not (len(state) == 10 and isinstance(state[1], bool) and
            isinstance(state[7], MnUserCovariance) and isinstance(state[9], MnUserCovariance)
            and np.ndim(state[8]) == 1):
        return None
    return state


def start_internal(m):
    """Minuit's internal values of its start state's free parameters, or None."""
    state = _state_tuple(m)
    return None if state is None else np.asarray(state[8], dtype=np.float64)


def write_start_covariance(m, cov, cov_int, fval, edm):
    """Write (k, k) covariances of the free parameters, external `cov` and internal `cov_int`,
    with `fval` and `edm`, into Minuit's start state as a HESSE leaves them (covariance status 3,
    full accuracy). Returns False, changing nothing, if the state is not the layout known here
    (tests/test_minuit.py checks the result against a HESSE's)."""
    from iminuit._core import MnUserCovariance
    state = _state_tuple(m)
    k = len(cov)
    if state is None or len(state[8]) != k:
        return False
    rows, cols = _tril(k)
    new = list(state)
    new[1], new[2], new[3], new[4] = True, 3, fval, edm
    new[7] = MnUserCovariance(cov[rows, cols], k)
    new[9] = MnUserCovariance(cov_int[rows, cols], k)
    cls = type(m._last_state)
    st = cls.__new__(cls)       # (pybind11 unpickling: __setstate__ on an unconstructed object)
    st.__setstate__(tuple(new))
    if len(st) != len(m._last_state):
        return False
    m._last_state = st
    return True


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
