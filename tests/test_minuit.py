"""tape.minuit.Minuit: iminuit's Minuit with the covariance copied in one piece; it must give
exactly iminuit's own matrix, with and without fixed parameters, and fall back to iminuit's copy
where Minuit2's storage is not the one it knows."""
import numpy as np
import pytest
from iminuit import Minuit as IminuitMinuit

from tape.minuit import Minuit, unpack_covariance


def quadratic(n, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    h = a @ a.T + n * np.eye(n)
    x0 = rng.normal(size=n)
    return (lambda x: 0.5 * (x - x0) @ h @ (x - x0)), (lambda x: h @ (x - x0))


@pytest.mark.parametrize("n, fixed", [(1, []), (5, []), (7, [0, 3]), (12, [11]), (30, [2, 5, 29])])
@pytest.mark.parametrize("step", ["migrad", "hesse"])
def test_covariance_is_iminuits(n, fixed, step):
    fcn, grad = quadratic(n, n)
    m = Minuit(fcn, np.zeros(n), grad=grad)
    m.errordef = 0.5
    for i in fixed:
        m.fixed[i] = True
    m.migrad()
    if step == "hesse":
        m.hesse()
    ours = np.array(m.covariance)
    IminuitMinuit._make_covariance(m)
    np.testing.assert_array_equal(ours, np.array(m.covariance))
    assert ours.shape == (n, n)
    assert np.all(ours[fixed] == 0)


class _OtherStorage:
    """A covariance whose pickled form is not the packed lower triangle."""

    def __init__(self, cov):
        self.cov, self.nrow = cov, cov.nrow

    def __getstate__(self):
        packed, k = self.cov.__getstate__()
        return packed[::-1], k

    def __getitem__(self, ij):
        return self.cov[ij]


def test_another_storage_is_refused():
    fcn, grad = quadratic(4, 1)
    m = IminuitMinuit(fcn, np.zeros(4), grad=grad)
    m.errordef = 0.5
    m.migrad()
    cov = m._last_state.covariance
    np.testing.assert_array_equal(unpack_covariance(cov), np.array(m.covariance))
    assert unpack_covariance(_OtherStorage(cov)) is None


def test_falls_back_to_iminuits_copy(monkeypatch):
    import tape.minuit as tm
    monkeypatch.setattr(tm, "unpack_covariance", lambda cov: None)
    fcn, grad = quadratic(6, 2)
    m = Minuit(fcn, np.zeros(6), grad=grad)
    m.errordef = 0.5
    m.fixed[1] = True
    m.migrad()
    ours = np.array(m.covariance)
    IminuitMinuit._make_covariance(m)
    np.testing.assert_array_equal(ours, np.array(m.covariance))
