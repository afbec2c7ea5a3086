"""The parts of the Newton minimizer: trust-region steps and Minuit's limit transformation."""
import math

import numpy as np
import pytest

from tape.newton import Transform, _Model, _trust_step, _trust_step_pd


def model(g, h, s):
    return g @ s + 0.5 * s @ h @ s


@pytest.mark.parametrize("seed", range(20))
def test_trust_step_is_the_constrained_minimum(seed):
    rng = np.random.default_rng(seed)
    n = 5
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    w = rng.normal(size=n) * 2
    h = (q * w) @ q.T
    g = rng.normal(size=n)
    radius = rng.uniform(0.1, 3)
    s = _trust_step(g, h, radius)
    assert np.linalg.norm(s) <= radius * (1 + 1e-6)
    # no random point inside the region does better
    best = model(g, h, s)
    for _ in range(2000):
        d = rng.normal(size=n)
        d *= radius * rng.uniform() ** (1 / n) / np.linalg.norm(d)
        assert model(g, h, d) >= best - 1e-9


@pytest.mark.parametrize("seed", range(12))
def test_cholesky_trust_step_equals_the_eigen_decomposition_one(seed):
    """A positive definite model whose Newton step leaves the region: the More-Sorensen step
    from Cholesky factorizations is the eigen-decomposition's step (within its 1e-3 tolerance
    on the length), on well and badly conditioned models; _Model takes it from 40 parameters."""
    rng = np.random.default_rng(seed)
    n = (5, 60)[seed % 2]
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    w = 10.0 ** rng.uniform(-6 if seed % 3 == 0 else -1, 1, n)
    h = (q * w) @ q.T
    h = 0.5 * (h + h.T)
    g = rng.normal(size=n)
    newton = np.linalg.norm(np.linalg.solve(h, g))
    radius = newton * rng.uniform(0.01, 0.9)
    s, lam = _trust_step_pd(h, g, radius)
    ref = _trust_step(g, h, radius)
    assert lam > 0
    assert radius <= np.linalg.norm(s) <= radius * (1 + 1e-3)
    assert model(g, h, s) <= model(g, h, ref) + 2e-3 * abs(model(g, h, ref))
    np.testing.assert_allclose(s, ref, atol=5e-3 * radius)
    m = _Model(h, g)
    assert m.pd
    np.testing.assert_allclose(m.step(radius), s if n >= 40 else ref, rtol=1e-12, atol=1e-15)
    assert (m._eig is None) == (n >= 40)


def test_cholesky_trust_step_gives_way_on_a_barely_positive_definite_model():
    """Condition 1e16: the shift the root needs is below the rounding of the diagonal, so the
    Cholesky iteration stops (None) and the model takes the eigen-decomposition's step, inside
    the radius (it used to run out its iterations and return a step 1.2 times the radius)."""
    rng = np.random.default_rng(157)
    n = 40
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    w = np.geomspace(1e-16, 1.0, n)
    h = (q * w) @ q.T
    h = 0.5 * (h + h.T)
    g = q @ (rng.normal(size=n) * w ** rng.uniform(0, 1.5))
    m = _Model(h, g)
    assert m.pd
    radius = 0.9 * np.linalg.norm(m.newton_step)
    assert _trust_step_pd(h, g, radius) is None
    s = m.step(radius)
    assert np.linalg.norm(s) <= radius * (1 + 1e-6)
    np.testing.assert_allclose(s, _trust_step(g, h, radius), rtol=1e-12, atol=1e-15)


def test_cholesky_trust_step_of_a_smaller_radius_starts_from_the_last_shift():
    """A rejected step's smaller radius starts the iteration from the last shift (below the new
    root): the same step as from zero, in fewer factorizations."""
    rng = np.random.default_rng(5)
    n = 60
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    h = (q * 10.0 ** rng.uniform(-4, 1, n)) @ q.T
    h = 0.5 * (h + h.T)
    g = rng.normal(size=n)
    m = _Model(h, g)
    r = 0.5 * np.linalg.norm(m.newton_step)
    first = m.step(r)
    assert m._shift[0] == r and m._shift[1] > 0
    warm = m.step(0.25 * r)
    cold, _ = _trust_step_pd(h, g, 0.25 * r)
    np.testing.assert_allclose(warm, cold, atol=2e-3 * 0.25 * r)
    assert 0.25 * r <= np.linalg.norm(warm) <= 0.25 * r * (1 + 1e-3)
    assert np.linalg.norm(first) >= r


def test_trust_step_at_a_saddle_point_follows_the_negative_curvature():
    # zero gradient, one negative eigenvalue: the hard case; the step must not be zero
    h = np.diag([-0.5, 1.0, 2.0])
    for g in (np.zeros(3), np.array([0.0, 1e-3, 0.0])):
        s = _trust_step(g, h, 0.7)
        assert np.linalg.norm(s) == pytest.approx(0.7, rel=1e-6)
        assert abs(s[0]) > 0.6
        assert model(g, h, s) < -0.1


def test_saddle_free_step_of_an_indefinite_model():
    """Far from the minimum an indefinite model takes the Newton step of |H| (cut to the
    radius); at a saddle point, where that step predicts almost nothing, the trust-region step."""
    h = np.diag([-2.0, 1.0, 4.0])
    g = np.array([1.0, -2.0, 4.0])
    m = _Model(h, g)
    assert not m.pd
    # (the first radius of newton() admits the |H| step: here 2.29)
    s = m.step(2.5, saddle_free=True)
    np.testing.assert_allclose(s, -g / np.abs(np.diag(h)), rtol=1e-12)
    # a radius so large that the trust-region step predicts 10 times more: that step
    np.testing.assert_allclose(m.step(50.0, saddle_free=True), _trust_step(g, h, 50.0))
    s = m.step(0.5, saddle_free=True)
    assert np.linalg.norm(s) == pytest.approx(0.5)
    np.testing.assert_allclose(s / np.linalg.norm(s), -g / np.abs(np.diag(h)) / np.linalg.norm(
        g / np.abs(np.diag(h))), rtol=1e-12)
    # without saddle_free: the trust-region step (on the boundary, along the negative curvature)
    np.testing.assert_allclose(m.step(0.5), _trust_step(g, h, 0.5), rtol=1e-12)
    # a saddle point: the |H| step is nearly zero, the trust-region step leaves along -2
    m = _Model(h, np.array([0.0, 1e-6, 0.0]))
    s = m.step(0.7, saddle_free=True)
    assert abs(s[0]) > 0.6 and m.decrease(s) > 0.1
    # a positive definite model inside the radius: its Newton step either way
    m = _Model(np.diag([1.0, 2.0, 3.0]), g)
    np.testing.assert_allclose(m.step(100.0, saddle_free=True), -g / [1.0, 2.0, 3.0])


def test_transform_round_trip_and_derivatives():
    lims = [(0, 10), (0.1, 5), (-math.inf, math.inf), (1.0, math.inf), (-math.inf, 2.0)]
    tr = Transform(lims)
    x = np.array([3.0, 4.9, -7.0, 1.5, -3.0])
    t = tr.to_internal(x)
    xb, d1, d2 = tr.to_external(t)
    np.testing.assert_allclose(xb, x, rtol=1e-12, atol=1e-12)
    eps = 1e-5
    for i in range(x.size):
        e = np.zeros_like(t)
        e[i] = eps
        xp, xm = tr.to_external(t + e)[0][i], tr.to_external(t - e)[0][i]
        assert (xp - xm) / (2 * eps) == pytest.approx(d1[i], rel=1e-7, abs=1e-9)
        assert (xp - 2 * xb[i] + xm) / eps ** 2 == pytest.approx(d2[i], rel=1e-3, abs=1e-5)
    # external values always inside the limits, whatever the internal value
    far = tr.to_external(np.array([1e3, -1e3, 5.0, -1e3, 1e3]))[0]
    for v, (lo, hi) in zip(far, lims):
        assert lo <= v <= hi


def test_degenerate_minimum_holds_parameters_pushed_against_their_limit():
    from tape.newton import degenerate_minimum
    tr = Transform([(0.0, 1.0), (-5.0, 5.0)])
    x = np.array([1.0 - 1e-9, 0.3])
    d1 = tr.to_external(tr.to_internal(x))[1]
    h = np.array([[-1.0, 0.0], [0.0, 4.0]])
    # pushed outwards (the function falls towards larger x0): held, the rest is a minimum
    assert degenerate_minimum(np.array([-2.0, 1e-9]), h, d1, x, tr, 1e-5) == ([1], [])
    # pulled inwards: not held, and the negative curvature makes it a saddle
    assert degenerate_minimum(np.array([2.0, 1e-9]), h, d1, x, tr, 1e-5) is None
    # not stationary in the free parameter
    assert degenerate_minimum(np.array([-2.0, 0.5]), h, d1, x, tr, 1e-5) is None
