"""Fits at the edges: far tails, starts and minima on limits, parameters without curvature.

Each case was found by probing the fitter against iminuit; each test fails on the code before
its fix.
"""
import math

import numpy as np
import pytest
from iminuit import Minuit

import tape
from tape.fit import _Counted, _off_the_limits, prepare


def minuit_reference(f, start, limits):
    m = Minuit(lambda p: f(np.asarray(p)), np.array(start, float),
               grad=lambda p: f.grad(np.asarray(p)))
    m.errordef = 0.5
    m.limits = limits
    m.migrad()
    m.hesse()
    return m


@pytest.mark.parametrize("c", [300.0, 360.0, 700.0])
def test_hessian_of_a_log_of_a_tiny_density_is_finite(c):
    """d2 log(u) needs 1/u^2, which overflows for u < 1.5e-154 although the result does not:
    the reciprocal's rules multiply by 1/u twice."""
    f = tape.record(lambda p, x: tape.sum(tape.log(tape.exp(-c * p[0] * x))), np.array([1.0]),
                    data={"x": np.ones(3)})
    h = f.hessian(np.array([1.0]))
    assert np.all(np.isfinite(h)) and abs(h[0, 0]) < 1e-8


def mixture(p, x):
    f, mu = p
    g = np.exp(-0.5 * ((x - mu) / 0.5) ** 2) / (0.5 * np.sqrt(2 * np.pi))
    return -np.sum(np.log(f * g + (1 - f) * 0.1))


@pytest.fixture(scope="module")
def mix():
    rng = np.random.default_rng(10)
    x = np.concatenate([rng.normal(5, 0.5, 1500), rng.uniform(0, 10, 3500)])
    return tape.record(mixture, np.array([0.3, 5.0]), data={"x": x})


def test_an_event_far_in_a_tail_keeps_the_hessian_finite():
    """Two narrow Gaussians and one event 27 sigma from both: its density underflows past
    1e-154; the fits must converge (they raised LinAlgError from eigh on a NaN Hessian)."""
    from models import Gaussian, Observable, Parameter, SumPdf, UnbinnedNLL
    rng = np.random.default_rng(7)
    x = Observable("x", (0.0, 10.0))
    model = SumPdf([Gaussian(x, Parameter("m1", 4.0, (0, 10)), Parameter("s1", 0.1, (0.01, 1))),
                    Gaussian(x, Parameter("m2", 4.5, (0, 10)), Parameter("s2", 0.2, (0.01, 1)))],
                   [Parameter("f", 0.5, (0, 1))])
    data = np.concatenate([rng.normal(4.0, 0.1, 1000), rng.normal(4.5, 0.2, 1000), [9.9]])
    nll = UnbinnedNLL(model, data)
    assert np.all(np.isfinite(nll.hessian(nll.start)))
    ref = minuit_reference(nll.function, nll.start, [p.limits for p in nll.parameters])
    for method in ("migrad", "newton"):
        r = nll.fit(method=method)
        assert r.valid and abs(r.fval - ref.fval) < 1e-4 and r.fval <= ref.fval + 1e-6
        np.testing.assert_allclose(np.array(r.errors), np.array(ref.errors), rtol=1e-2)


def test_a_start_on_a_limit_is_moved_just_inside(mix):
    setup = prepare(mix, [0.0, 10.0], limits=[(0, 1), (0, 10)])
    x = _off_the_limits(setup)
    assert 0 < x[0] < 1e-6 and 10 - 1e-5 < x[1] < 10
    one_sided = prepare(mix, [0.0, 5.0], limits=[(0, None), None])
    assert 0 < _off_the_limits(one_sided)[0] < 1e-6
    fixed = prepare(mix, [0.0, 5.0], limits=[(0, 1), None], fixed=[True, False])
    assert _off_the_limits(fixed)[0] == 0.0            # fixed parameters stay where they are
    inside = prepare(mix, [0.3, 5.0], limits=[(0, 1), (0, 10)])
    assert np.array_equal(_off_the_limits(inside), [0.3, 5.0])


def test_the_seed_does_not_pin_a_parameter_next_to_its_limit(mix):
    """Near a limit, with the gradient pointing inside, the transformation's curvature term is
    huge and negative: made positive it pinned the parameter (Migrad then never moved it)."""
    lims = [(0, 1), (0, 10)]
    x = _off_the_limits(prepare(mix, [0.3, 10.0], limits=lims))
    cb = _Counted(mix, seed_pd=True, limits=lims)
    seed = cb.hessian(x)
    exact = np.abs(np.diag(mix.hessian(x)))
    assert seed[1, 1] < 1e3 * exact.max()


def test_newton_from_a_start_where_a_parameter_has_no_curvature(mix):
    """A fraction at 0 leaves the mean without curvature: its scale must not be 1e-150."""
    ref = minuit_reference(mix, [0.3, 5.0], [(0, 1), (0, 10)])
    # (the fraction is not on a limit here, so nothing moves it off 0 before Newton starts)
    for limits in ([None, None], [(-0.5, 1), None]):
        with np.errstate(all="ignore"):
            r = tape.fit(mix, [0.0, 5.0], limits=limits, method="newton")
        assert r.valid and abs(r.fval - ref.fval) < 1e-6


def test_minimum_on_a_limit_gives_errors_through_the_transformation():
    """A width whose best value lies below its lower limit: the fit ends on the limit, where the
    external Hessian is not positive definite; like Minuit, the errors go through the limit
    transformation, and the other parameter's error is Minuit's."""
    y = np.random.default_rng(1).normal(0, 0.1, 3000)
    f = tape.record(lambda p, y: np.sum(0.5 * ((y - p[0]) / p[1]) ** 2 + np.log(p[1])),
                    np.array([0.0, 1.0]), data={"y": y})
    limits = [None, (0.5, 5)]
    ref = minuit_reference(f, [0.3, 1.0], limits)
    for method in ("migrad", "newton"):
        r = tape.fit(f, [0.3, 1.0], limits=limits, method=method)
        assert r.valid, r.message
        assert "limit" in r.message
        assert abs(r.values[1] - 0.5) < 1e-6 and r.fval <= ref.fval + 1e-6   # (Minuit stops at EDM 1e-5)
        assert r.errors[0] == pytest.approx(ref.errors[0], rel=1e-2)
        assert r.errors[1] == pytest.approx(ref.errors[1], rel=0.05)


def test_log_erfc_far_in_the_tail():
    from scipy import special
    from models.pdfs.gaussian import log_erfc
    for z in (0.0, 0.5, 3.0, 19.99, 20.0, 20.01, 26.6, 40.0, 300.0):
        reference = math.log(special.erfcx(z)) - z * z
        assert float(log_erfc(np.float64(z))) == pytest.approx(reference, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("lo,hi", [(45.0, 46.0), (-50.0, -49.0), (30.0, 31.0), (2.0, 3.0),
                                   (-1.0, 1.0), (-0.5, 3.0), (5.0, 5.0001)])
def test_gaussian_bin_integral_far_in_the_tails(lo, hi):
    """A bin tens of standard deviations out: erfc underflows to 0 past 26.6, the log of the
    integral must not (it gave -inf and NaN derivatives)."""
    from scipy import special
    from models.pdfs.gaussian import log_gauss_integral
    m, s = 0.1, 1.1
    a, b = (lo - m) / (s * math.sqrt(2)), (hi - m) / (s * math.sqrt(2))
    if a < 0 and b <= 0:
        a, b = -b, -a
    if a >= 0:      # one tail: erfc(a) - erfc(b) = exp(-a^2) (erfcx(a) - erfcx(b) exp(a^2 - b^2))
        diff_log = -a * a + math.log(special.erfcx(a) - special.erfcx(b) * math.exp(a * a - b * b))
    else:
        diff_log = math.log(special.erf(b) - special.erf(a))
    reference = math.log(s * math.sqrt(math.pi / 2)) + diff_log
    f = tape.record(lambda p: log_gauss_integral(p[0], p[1], lo, hi), np.array([m, s]))
    p = np.array([m, s])
    assert f(p) == pytest.approx(reference, rel=1e-10)
    g, h = f.grad(p), f.hessian(p)
    assert np.all(np.isfinite(g)) and np.all(np.isfinite(h))
    eps = 1e-6
    fd = [(f(p + e) - f(p - e)) / (2 * eps) for e in np.eye(2) * eps]
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6)


def test_binned_fit_with_empty_bins_far_in_a_tail():
    """A narrow Gaussian histogrammed over a wide range: bins 30 sigma out have an expected
    count of 1e-200 and less; Migrad ended at a wrong point with a non-finite gradient."""
    from models import BinnedNLL, Gaussian, Observable, Parameter
    rng = np.random.default_rng(6)
    x = Observable("x", (0.0, 10.0))
    g = Gaussian(x, Parameter("mu", 2.0, (0, 10)), Parameter("sigma", 2.0, (0.05, 5)))
    counts, edges = np.histogram(rng.normal(7.0, 0.2, 500), 100, (0, 10))
    nll = BinnedNLL(g, (counts, edges))
    ref = minuit_reference(nll.function, nll.start, [p.limits for p in nll.parameters])
    for method in ("migrad", "newton"):
        r = nll.fit(method=method)
        assert r.valid and abs(r.fval - ref.fval) < 1e-4 and r.fval <= ref.fval + 1e-6
        np.testing.assert_allclose(np.array(r.errors), np.array(ref.errors), rtol=1e-2)


def test_migrad_runs_again_where_it_stopped_short_of_the_minimum():
    """On this 2000-event sample, strategy-0 Migrad stops (valid, by its own EDM) where the exact
    Newton finish still goes downhill for more than its 5 iterations: the fit used to end there,
    invalid. Migrad now runs again from the finish's lower point and ends at the minimum that
    Migrad at strategy 2 finds."""
    from models import tutorial
    x = tutorial.sample(2000, np.random.default_rng(13))
    f = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x})
    r = tape.fit(f, tutorial.TRUTH, names=tutorial.NAMES, limits=tutorial.LIMITS)
    m = Minuit(f, tutorial.TRUTH, grad=f.grad)
    m.errordef, m.limits, m.strategy = 0.5, tutorial.LIMITS, 2
    m.migrad()
    assert m.valid
    assert r.valid, r.message
    assert r.fval <= m.fval + 1e-6
    m.hesse()
    np.testing.assert_allclose(np.array(r.values), np.array(m.values), atol=0.05 * max(m.errors))


def test_migrad_does_not_run_again_past_its_call_limit():
    """The restart is for Migrad stopping short by its own EDM, not for a user's ncall."""
    from models import tutorial
    x = tutorial.sample(20_000, np.random.default_rng(4))
    f = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x})
    start = np.array([3.0, 1.5, 2.5, 0.3, 0.0, 0.0, 0.1])
    r = tape.fit(f, start, names=tutorial.NAMES, limits=tutorial.LIMITS, ncall=10)
    assert not r.valid
    assert r.ngrad < 30 and "call limit" in r.message


def test_newton_stops_where_rounding_noise_hides_the_last_digits():
    """A Poisson constraint written as tau log(rate / tau) - (rate - tau) with tau = 1.9e11 has
    1e-5 of rounding noise in its value: Newton's ratio test then rejects or barely accepts steps
    that the exact gradient and Hessian predict well. Once the exact model puts the minimum
    within NEAR * edm_goal, at most NEAR_EVALUATIONS more trial points (the 3L eRJR CLs fits
    crawled through 230 and 300 before HistFactory's form was fixed)."""
    from tape.newton import NEAR_EVALUATIONS
    tau = 1.9e11

    def fn(p):
        rate = p[0] * tau
        constraint = -(tau * np.log(rate * (1.0 / tau)) - (rate - tau))
        lam = 40.0 * p[0] + 10.0 * p[1] + 5.0 * p[2] * p[3]
        return constraint - (50.0 * np.log(lam) - lam) + 0.5 * np.sum(
            (p[1:] - 1.0) ** 2 / np.array([0.2, 0.3, 0.5]) ** 2)

    f = tape.record(fn, np.ones(4))
    r = tape.fit(f, [1.0, 0.5, 1.5, 0.6], method="newton", limits=[(0, 2)] * 4)
    assert r.valid and "steps after the exact Hessian" in r.message
    assert r.ngrad <= NEAR_EVALUATIONS + 10
