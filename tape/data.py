"""Validation of the data arrays a tape replays over: one place for every data error message."""
import numpy as np

from .errors import DataError

__all__ = ["check_data"]


def check_data(data, expected=None):
    """Return ({name: C-contiguous float64 array}, n_events) or raise DataError naming the problem.

    `expected` maps names to trailing shapes when replacing the data of a recorded tape.
    """
    if data is None:
        data = {}
    if not hasattr(data, "items"):
        raise DataError(f"data must be a mapping of name -> array, got {type(data).__name__}")
    out = {}
    for name, arr in data.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise DataError(f"data name {name!r} is not a valid Python identifier (it becomes a "
                            "keyword argument of the recorded function)")
        try:
            a = np.ascontiguousarray(arr, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise DataError(f"data array {name!r} is not numeric: {e}") from None
        if a.ndim == 0:
            raise DataError(f"data array {name!r} is a scalar; data arrays have the event axis "
                            "first (pass constants through the function's closure instead)")
        bad = ~np.isfinite(a)
        if bad.any():
            rows = np.flatnonzero(bad.reshape(len(a), -1).any(axis=1))
            kind = "NaN" if np.isnan(a).any() else "inf"
            raise DataError(f"data array {name!r} has {int(bad.sum())} non-finite values ({kind}), "
                            f"first at event {int(rows[0])}: remove or replace those events")
        out[name] = a
    if expected is not None:
        if set(out) != set(expected):
            missing, extra = sorted(set(expected) - set(out)), sorted(set(out) - set(expected))
            raise DataError(f"with_data needs exactly the recorded data arrays {sorted(expected)}; "
                            f"missing {missing}, unexpected {extra}")
        for name, shape in expected.items():
            if out[name].shape[1:] != tuple(shape):
                raise DataError(f"data array {name!r} has rows of shape {out[name].shape[1:]}, "
                                f"the tape was recorded with rows of shape {tuple(shape)}")
    lengths = {name: a.shape[0] for name, a in out.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"data arrays have different numbers of events (axis 0): {lengths}")
    n = next(iter(lengths.values())) if lengths else 0
    return out, n
