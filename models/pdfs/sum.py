"""SumPdf: a mixture of pdfs with RooAddPdf semantics (fractions, recursive fractions, yields)."""
import numpy as np

import tape

from ..parameters import Parameter
from .base import Pdf, as_data

__all__ = ["SumPdf"]

TINY = 1e-300


class SumPdf(Pdf):
    """sum_i c_i p_i(x) of normalized pdfs over the same observables.

    Parameters
    ----------
    pdfs : list of Pdf
    fractions : list, optional
        n - 1 fractions; the last coefficient is 1 - sum of the others. With ``recursive=True``
        (RooAddPdf's recursive fractions) c_1 = f_1, c_i = f_i prod_{j<i} (1 - f_j), and the last
        takes what is left.
    yields : list, optional
        n expected event counts instead of fractions: c_i = y_i / sum(y), and an extended
        likelihood gets sum(y) as the expected number of events.

    The mixture is evaluated as a density (each component's exp of its unnormalized log form,
    or its own linear form, times its coefficient over its normalization) and its log taken
    once: the same per-event work as a hand-written mixture, as RooAddPdf does. Where every
    component underflows (beyond ~38 standard deviations of every Gaussian core), or a
    polynomial component drives the sum negative, the log is floored: the NLL is large but
    finite rather than NaN, and Minuit steps back.

    Examples
    --------
    >>> import numpy as np
    >>> from models import Observable, Parameter, Gaussian, Uniform, SumPdf
    >>> x = Observable("x", (0.0, 10.0))
    >>> model = SumPdf([Gaussian(x, 5.0, 1.0), Uniform(x)], [Parameter("f", 0.7, (0, 1))])
    >>> round(model.integral(), 12)
    1.0
    """

    def __init__(self, pdfs, fractions=None, *, yields=None, recursive=False):
        pdfs = list(pdfs)
        if len(pdfs) < 2:
            raise ValueError("SumPdf needs at least two pdfs")
        names = [o.name for o in pdfs[0].observables]
        for p in pdfs[1:]:
            if [o.name for o in p.observables] != names:
                raise ValueError("all pdfs of a SumPdf must have the same observables")
        if (fractions is None) == (yields is None):
            raise ValueError("give either n - 1 fractions or n yields")
        if fractions is not None:
            fractions = list(fractions)
            if len(fractions) != len(pdfs) - 1:
                raise ValueError(f"{len(pdfs)} pdfs need {len(pdfs) - 1} fractions, got "
                                 f"{len(fractions)}")
            starts = [f.value if isinstance(f, Parameter) else float(f) for f in fractions]
            if any(not 0.0 <= f <= 1.0 for f in starts):
                raise ValueError(f"fractions must start inside [0, 1], got {starts}")
            if not recursive and sum(starts) > 1.0 + 1e-12:
                raise ValueError(f"fractions sum to {sum(starts)} > 1 at the start; use "
                                 "recursive=True for independent fractions")
            super().__init__(pdfs[0].observables, fractions=fractions)
        else:
            yields = list(yields)
            if len(yields) != len(pdfs):
                raise ValueError(f"{len(pdfs)} pdfs need {len(pdfs)} yields, got {len(yields)}")
            starts = [y.value if isinstance(y, Parameter) else float(y) for y in yields]
            if any(y < 0 for y in starts) or sum(starts) <= 0:
                raise ValueError(f"yields must start non-negative with a positive sum: {starts}")
            super().__init__(pdfs[0].observables, yields=yields)
        self.pdfs = pdfs
        self.recursive = bool(recursive)
        self.extended = yields is not None

    def _daughters(self):
        return self.pdfs

    def coefficients(self, v):
        """The mixture coefficients c_i (they sum to 1)."""
        if self.extended:
            ys = v("yields")
            total = ys[0]
            for y in ys[1:]:
                total = total + y
            return [y / total for y in ys]
        fs = v("fractions")
        if not self.recursive:
            rest = 1.0
            for f in fs:
                rest = rest - f
            return list(fs) + [rest]
        out, left = [], 1.0
        for f in fs:
            out.append(left * f)
            left = left * (1.0 - f)
        return out + [left]

    def expected_events(self, values=None):
        """sum of the yields (extended mixtures only)."""
        v = self._getter(values)
        if not self.extended:
            raise ValueError("only a SumPdf built with yields has an expected number of events")
        ys = v("yields")
        total = ys[0]
        for y in ys[1:]:
            total = total + y
        return total

    def _component_density(self, pdf, X, values, ranges):
        """The normalized density of one component (linear space)."""
        dv = pdf._getter(values)
        log_norm = pdf._log_integral(dv, ranges)
        # exp(log_unnorm) * (c / norm): the per-event work is one exp, the rest is hoisted
        if hasattr(pdf, "_unnorm"):
            return pdf._unnorm(X, dv) * tape.exp(-log_norm)
        return tape.exp(pdf._log_unnorm(X, dv)) * tape.exp(-log_norm)

    def _unnorm(self, X, v):
        """The mixture density itself (nested mixtures stay in linear space: one log in all)."""
        full = {o.name: o.limits for o in self.observables}
        total = 0.0
        for c, pdf in zip(self.coefficients(v), self.pdfs):
            total = total + c * self._component_density(pdf, X, v.values, _sub(full, pdf))
        return total

    def _log_unnorm(self, X, v):
        return tape.log(tape.maximum(self._unnorm(X, v), TINY))

    def _log_integral(self, v, ranges):
        full = {o.name: o.limits for o in self.observables}
        if all(isinstance(lo, float) and isinstance(hi, float) for lo, hi in ranges.values()) \
                and ranges == full:
            return 0.0
        total = 0.0
        for c, pdf in zip(self.coefficients(v), self.pdfs):
            dv = pdf._getter(v.values)
            total = total + c * tape.exp(pdf._log_integral(dv, _sub(ranges, pdf))
                                         - pdf._log_integral(dv, _sub(full, pdf)))
        return tape.log(total)

    def _sample(self, n, rng, v):
        c = np.array([float(ci) for ci in self.coefficients(v)])
        if np.any(c < -1e-12):
            raise ValueError(f"cannot sample: mixture coefficients {c} are negative")
        c = np.clip(c, 0.0, None)
        counts = rng.multinomial(n, c / c.sum())
        names = [o.name for o in self.observables]
        out = {name: np.empty(n) for name in names}
        comp = np.repeat(np.arange(len(self.pdfs)), counts)
        rng.shuffle(comp)
        for i, pdf in enumerate(self.pdfs):
            idx = np.flatnonzero(comp == i)
            if idx.size:
                draw = pdf._sample(idx.size, rng, pdf._getter(v.values))
                for name in names:
                    out[name][idx] = draw[name]
        return out


def _sub(ranges, pdf):
    return {o.name: ranges[o.name] for o in pdf.observables}
