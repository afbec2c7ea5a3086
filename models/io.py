"""Reading event data: TTree branches of a ROOT file through uproot (an optional extra)."""
import numpy as np

__all__ = ["read_root"]


def read_root(path, tree, branches, *, cut=None):
    """{branch: float64 array} of the `branches` of `tree` in the ROOT file at `path`.

    Needs ``uproot`` (``pip install tapefit[root]``). `cut` is an optional uproot/awkward
    selection string applied while reading (e.g. ``"(x > 0) & (x < 10)"``).

    The result is what ``UnbinnedNLL`` takes as data when observables are named like the
    branches.
    """
    try:
        import uproot
    except ImportError as e:
        raise ImportError("reading ROOT files needs uproot: pip install uproot "
                          "(or tapefit[root])") from e
    branches = [branches] if isinstance(branches, str) else list(branches)
    with uproot.open(path) as f:
        if tree not in f:
            raise KeyError(f"{path!r} has no tree {tree!r}; it holds {sorted(f.keys())}")
        t = f[tree]
        missing = [b for b in branches if b not in t.keys()]
        if missing:
            raise KeyError(f"tree {tree!r} has no branches {missing}; it has {sorted(t.keys())}")
        arrays = t.arrays(branches, cut=cut, library="np")
    return {b: np.asarray(arrays[b], dtype=np.float64) for b in branches}
