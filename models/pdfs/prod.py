"""ProdPdf: the product of pdfs of independent observables."""
from .base import Pdf

__all__ = ["ProdPdf"]


class ProdPdf(Pdf):
    """p(x, y, ...) = p_1(x) p_2(y) ...: pdfs over disjoint sets of observables.

    Examples
    --------
    >>> from models import Observable, Gaussian, Uniform, ProdPdf
    >>> x, y = Observable("x", (-5.0, 5.0)), Observable("y", (0.0, 1.0))
    >>> p = ProdPdf([Gaussian(x, 0.0, 1.0), Uniform(y)])
    >>> sorted(p.sample(3, 1))
    ['x', 'y']
    """

    def __init__(self, pdfs):
        pdfs = list(pdfs)
        if len(pdfs) < 1:
            raise ValueError("ProdPdf needs at least one pdf")
        obs, seen = [], set()
        for p in pdfs:
            for o in p.observables:
                if o.name in seen:
                    raise ValueError(f"observable {o.name!r} appears in two factors of a ProdPdf: "
                                     "the factors must be independent")
                seen.add(o.name)
                obs.append(o)
        super().__init__(obs)
        self.pdfs = pdfs

    def _daughters(self):
        return self.pdfs

    def _log_unnorm(self, X, v):
        total = 0.0
        for p in self.pdfs:
            total = total + p._log_unnorm(X, p._getter(v.values))
        return total

    def _log_integral(self, v, ranges):
        total = 0.0
        for p in self.pdfs:
            total = total + p._log_integral(p._getter(v.values),
                                            {o.name: ranges[o.name] for o in p.observables})
        return total

    def _sample(self, n, rng, v):
        out = {}
        for p in self.pdfs:
            out.update(p._sample(n, rng, p._getter(v.values)))
        return out
