"""The RooFit tutorial model built from models' pdfs (the same likelihood as ``tutorial.nll``)."""
from . import tutorial
from .parameters import Observable, Parameter
from .pdfs import Chebychev, Gaussian, SumPdf

__all__ = ["build"]


def build(values=None):
    """(model, observable, {name: Parameter}) of the tutorial model at `values` (default truth).

    >>> model, x, params = build()
    >>> sorted(params) == sorted(tutorial.NAMES)
    True
    """
    values = tutorial.TRUTH if values is None else values
    p = {name: Parameter(name, float(v), limits=lim)
         for name, v, lim in zip(tutorial.NAMES, values, tutorial.LIMITS)}
    x = Observable("x", (tutorial.LO, tutorial.HI))
    sig = SumPdf([Gaussian(x, p["mu"], p["sigma1"]), Gaussian(x, p["mu"], p["sigma2"])],
                 [p["sig1frac"]])
    model = SumPdf([Chebychev(x, [p["a0"], p["a1"]]), sig], [p["bkgfrac"]])
    return model, x, p
