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


@pytest.mark.parametrize("fixed", [[], [0, 3], [6]])
@pytest.mark.parametrize("limits", ["two-sided", "one-sided", "mixed"])
def test_seed_state_is_a_hesse_on_the_seed(fixed, limits):
    """tape.fit gives Migrad its start covariance by writing Minuit's state (the HESSE it
    replaces costs 5 ms at 126 parameters): the state must be the one iminuit's HESSE on the
    same seed Hessian leaves, in external and internal coordinates, with fixed parameters and
    every kind of limit."""
    import sys
    import tape
    F = sys.modules["tape.fit"]
    n = 7
    rng = np.random.default_rng(4)
    a = rng.normal(size=(n, n))
    h0 = a @ a.T + n * np.eye(n)
    x0 = rng.uniform(0.2, 0.8, n)
    f = tape.record(lambda p: 0.5 * (p - x0) @ h0 @ (p - x0) + np.sum(p ** 4), np.full(n, 0.5))
    lim = {"two-sided": [(0.0, 1.0)] * n, "one-sided": [(0.0, None)] * n,
           "mixed": [(0.0, 1.0), (None, 2.0), (0.0, None), None, (-1, 1), (0.1, None), None]}
    start = np.full(n, 0.35)
    fx = [i in fixed for i in range(n)]
    states = []
    for use_state in (True, False):
        setup = F.prepare(f, start, None, lim[limits], fx, None)
        cb = F._Counted(f, seed_pd=True, limits=setup.limits)
        m, seeded = F._minuit(setup, cb, setup.start, True, 0, None)
        assert seeded
        cb.seed_from(setup.start, None)
        if use_state:
            assert F._seed_state(m, cb, setup, setup.start)
        else:
            m.hesse()
        states.append(m._last_state.__getstate__())
    ours, hesse = states
    assert ours[1] and hesse[1] and ours[2] == hesse[2]
    np.testing.assert_array_equal(ours[8], hesse[8])
    assert ours[3] == pytest.approx(hesse[3], rel=1e-12)
    assert ours[4] == pytest.approx(hesse[4], rel=1e-8)
    for i in (7, 9):                     # the covariance, external and internal
        np.testing.assert_allclose(ours[i].__getstate__()[0], hesse[i].__getstate__()[0],
                                   rtol=1e-9, atol=1e-15)
        assert ours[i].__getstate__()[1] == hesse[i].__getstate__()[1] == n - len(fixed)


def test_seed_state_leaves_a_start_minuit_moved_to_the_hesse():
    """A start within ~1e-8 of a two-sided limit is moved inside by Minuit (its internal
    coordinate is clamped): the state is then left to a real HESSE at Minuit's point (writing
    it from the true start made the internal covariance 1e3 to 1e33 times too large)."""
    import sys
    import tape
    F = sys.modules["tape.fit"]
    f = tape.record(lambda p: (p[0] - 0.3) ** 2 + (p[1] - p[0]) ** 2 + p[1] ** 4, np.full(2, 0.5))
    setup = F.prepare(f, np.array([1.58e-12, 0.4]), None, [(0.0, 1.0)] * 2, None, None)
    cb = F._Counted(f, seed_pd=True, limits=setup.limits)
    m, _ = F._minuit(setup, cb, setup.start, True, 0, None)
    cb.seed_from(setup.start, None)
    assert not F._seed_state(m, cb, setup, setup.start)
