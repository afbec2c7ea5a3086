"""GenericPdf: a density from the user's own Python function, normalized numerically."""
import tape

from .base import Pdf

__all__ = ["GenericPdf"]


class GenericPdf(Pdf):
    """A pdf from ``density(x, *params)`` written with numpy/``tape`` functions (non-negative).

    The normalization is fixed-order Gauss-Legendre quadrature recorded on the tape, so its
    derivatives are exact; sampling is accept-reject.

    Examples
    --------
    >>> import numpy as np
    >>> from models import Observable, Parameter, GenericPdf
    >>> x = Observable("x", (0.0, 1.0))
    >>> p = GenericPdf([x], lambda x, a: 1.0 + a * x ** 2, [Parameter("a", 2.0)])
    >>> round(p.integral(), 10)
    1.0
    """

    def __init__(self, observables, density, parameters=()):
        super().__init__(list(observables), params=list(parameters))
        self.density = density

    def _log_unnorm(self, X, v):
        args = [X[o.name] for o in self.observables] + list(v("params"))
        return tape.log(tape.maximum(self.density(*args), 1e-300))
