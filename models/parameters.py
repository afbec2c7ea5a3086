"""Parameters and observables: the named quantities a model is built from."""
import math

__all__ = ["Parameter", "Observable"]


class Parameter:
    """A named model parameter with a start value, optional limits, and a fixed flag.

    Parameters
    ----------
    name : str
    value : float
        Start value (inside `limits`).
    limits : (float or None, float or None), optional
        Lower and upper bound; None for an open side.
    fixed : bool
        Fixed parameters stay out of the minimizer's vector: they enter the tape as constants.

    Examples
    --------
    >>> from models import Parameter
    >>> mu = Parameter("mu", 5.0, limits=(0, 10))
    >>> mu
    Parameter('mu', 5.0, limits=(0, 10))
    """

    def __init__(self, name, value, limits=None, fixed=False):
        if not isinstance(name, str) or not name:
            raise ValueError(f"a parameter name must be a non-empty string, got {name!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"parameter {name!r}: start value {value} is not finite")
        if limits is not None:
            lo, hi = limits
            lo = -math.inf if lo is None else float(lo)
            hi = math.inf if hi is None else float(hi)
            if not lo < hi:
                raise ValueError(f"parameter {name!r}: limits {limits} are empty")
            if not lo <= value <= hi:
                raise ValueError(f"parameter {name!r}: start value {value} is outside its limits "
                                 f"{limits}")
            limits = (lo, hi)
        self.name = name
        self.value = value
        self.limits = limits
        self.fixed = bool(fixed)

    def __repr__(self):
        lim = "" if self.limits is None else \
            f", limits=({_fmt(self.limits[0])}, {_fmt(self.limits[1])})"
        fix = ", fixed=True" if self.fixed else ""
        return f"Parameter({self.name!r}, {self.value}{lim}{fix})"


def _fmt(v):
    return "None" if math.isinf(v) else (str(int(v)) if v == int(v) else str(v))


class Observable:
    """A named observable with the range the pdfs are normalized over.

    Examples
    --------
    >>> from models import Observable
    >>> Observable("x", (0.0, 10.0)).limits
    (0.0, 10.0)
    """

    def __init__(self, name, limits):
        if not isinstance(name, str) or not name:
            raise ValueError(f"an observable name must be a non-empty string, got {name!r}")
        lo, hi = (float(v) for v in limits)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"observable {name!r}: limits {limits} must be finite with lo < hi")
        self.name = name
        self.limits = (lo, hi)

    @property
    def width(self):
        return self.limits[1] - self.limits[0]

    def __repr__(self):
        return f"Observable({self.name!r}, {self.limits})"
