"""FitResult: what a fit returns, with iminuit-like views and a readable table."""
import numpy as np

__all__ = ["FitResult", "NamedView"]


class NamedView:
    """A read-only vector indexable by position and by parameter name (like iminuit's views)."""

    __slots__ = ("_names", "_values")

    def __init__(self, names, values):
        self._names = list(names)
        self._values = np.asarray(values, dtype=np.float64)

    def __getitem__(self, key):
        if isinstance(key, str):
            try:
                return float(self._values[self._names.index(key)])
            except ValueError:
                raise KeyError(f"no parameter named {key!r}; parameters: {self._names}") from None
        out = self._values[key]
        return float(out) if np.ndim(out) == 0 else out

    def __len__(self):
        return len(self._values)

    def __iter__(self):
        return (float(v) for v in self._values)

    def __array__(self, dtype=None, copy=None):
        return np.array(self._values, dtype=dtype)

    def to_dict(self):
        return dict(zip(self._names, (float(v) for v in self._values)))

    def __repr__(self):
        return "<" + " ".join(f"{n}={v:.6g}" for n, v in zip(self._names, self._values)) + ">"


class FitResult:
    """The outcome of ``tape.fit``: values, errors, covariance, and how the minimizer fared.

    ``values`` and ``errors`` index by position and by name; ``minuit`` is the ``iminuit.Minuit``
    behind the result (for MINOS, contours and plots). ``nfcn``, ``ngrad`` and ``nhess`` count
    the evaluations the fit made: values alone, values with gradients (one replay each), and
    Hessians; an answer Minuit gets again at the same parameter vector is not counted twice.
    ``hessian`` is the exact Hessian where the errors were computed (zero in the rows and
    columns of fixed parameters), for ``hessian_seed=`` of a neighbouring fit, e.g. the next
    point of a scan.
    """

    def __init__(self, *, names, values, errors, covariance, fval, edm, valid, message, nfcn,
                 ngrad, nhess, method, fixed, minuit=None, minuit_factory=None, time=None,
                 hessian=None):
        self.names = list(names)
        self.values = NamedView(names, values)
        self.errors = NamedView(names, errors)
        self.covariance = np.asarray(covariance, dtype=np.float64)
        self.fval = float(fval)
        self.edm = float(edm)
        self.valid = bool(valid)
        self.message = message
        self.nfcn, self.ngrad, self.nhess = int(nfcn), int(ngrad), int(nhess)
        self.hessian = None if hessian is None else np.asarray(hessian, dtype=np.float64)
        self.method = method
        self.fixed = list(fixed)
        self.time = time
        self._minuit = minuit
        self._minuit_factory = minuit_factory

    @property
    def minuit(self):
        """The ``iminuit.Minuit`` at the minimum (made on first use after a Newton fit)."""
        if self._minuit is None and self._minuit_factory is not None:
            self._minuit = self._minuit_factory()
        return self._minuit

    @property
    def correlation(self):
        c = self.covariance
        d = np.sqrt(np.clip(np.diag(c), 0.0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = c / np.outer(d, d)
        r[~np.isfinite(r)] = 0.0
        np.fill_diagonal(r, np.where(d > 0, 1.0, 0.0))
        return r

    def _rows(self):
        for i, name in enumerate(self.names):
            yield name, self.values[i], self.errors[i], "fixed" if self.fixed[i] else ""

    def __repr__(self):
        head = (f"FitResult(method={self.method!r}, valid={self.valid}, fval={self.fval:.10g}, "
                f"edm={self.edm:.3g}, nfcn={self.nfcn}, ngrad={self.ngrad}, nhess={self.nhess})")
        if self.message:
            head += f"\n  {self.message}"
        width = max([len(n) for n in self.names] + [9])
        lines = [head, f"  {'parameter':<{width}}  {'value':>14}  {'error':>12}"]
        for name, v, e, fx in self._rows():
            lines.append(f"  {name:<{width}}  {v:>14.8g}  {e:>12.6g}  {fx}".rstrip())
        return "\n".join(lines)

    def _repr_html_(self):
        rows = "".join(f"<tr><td>{n}</td><td>{v:.8g}</td><td>{e:.6g}</td><td>{fx}</td></tr>"
                       for n, v, e, fx in self._rows())
        status = "valid" if self.valid else f"invalid: {self.message}"
        return (f"<p><b>{self.method}</b> fit, {status}; fval = {self.fval:.10g}, "
                f"edm = {self.edm:.3g}, nfcn = {self.nfcn}, ngrad = {self.ngrad}, "
                f"nhess = {self.nhess}</p><table><tr><th>parameter</th><th>value</th>"
                f"<th>error</th><th></th></tr>{rows}</table>")
