"""Likelihoods of the models layer: values, iminuit protocol, options, fits and pulls."""
import numpy as np
import pytest
from iminuit import Minuit

import tape
from models import (BinnedNLL, Gaussian, GaussianConstraint, Observable, Parameter,
                    PoissonConstraint, SimultaneousNLL, SumPdf, UnbinnedNLL, Exponential, tutorial)
from models.tutorial_model import build


@pytest.fixture(scope="module")
def tut():
    model, x, params = build()
    data = model.sample(20_000, np.random.default_rng(4))
    return model, x, params, data


def in_tutorial_order(nll, p):
    q = np.empty(len(p))
    for name, v in zip(tutorial.NAMES, p):
        q[nll.names.index(name)] = v
    return q


def test_unbinned_equals_the_hand_written_nll(tut):
    model, x, params, data = tut
    nll = UnbinnedNLL(model, data)
    assert sorted(nll.names) == sorted(tutorial.NAMES)
    for p in (tutorial.TRUTH, tutorial.TRUTH * 1.05):
        assert nll(in_tutorial_order(nll, p)) == pytest.approx(tutorial.nll(p, data), rel=1e-12)
    assert isinstance(nll.function, tape.Function)
    tape.check_grads(nll.function, nll.start * 1.01)


def test_iminuit_protocol(tut):
    model, x, params, data = tut
    nll = UnbinnedNLL(model, data)
    assert nll.errordef == 0.5 and nll.has_grad and isinstance(nll.has_hessian, bool)
    m = Minuit(nll, *nll.start)           # positional call: names from nll._parameters
    assert list(m.parameters) == nll.names
    assert m.limits["mu"] == (0.0, 10.0)
    m.migrad()
    assert m.valid and m.ngrad > 0
    m2 = Minuit(nll, nll.start)           # array call
    m2.migrad()
    assert m2.fval == pytest.approx(m.fval, abs=1e-4)
    np.testing.assert_allclose(nll.hessian(np.array(m.values)), nll.function.hessian(np.array(m.values)))


def test_fixed_parameters_stay_out_of_the_vector():
    x = Observable("x", (-5, 5))
    mu, sigma = Parameter("mu", 0.3), Parameter("sigma", 1.0, fixed=True)
    g = Gaussian(x, mu, sigma)
    data = g.sample(500, np.random.default_rng(1))
    nll = UnbinnedNLL(g, data)
    assert nll.names == ["mu"] and nll.function.n_params == 1
    assert nll([0.3]) == pytest.approx(-np.sum(g.log_prob(data)), rel=1e-13)


def test_weights_extended_and_constraints():
    x = Observable("x", (0.0, 5.0))
    ns, nb = Parameter("ns", 300.0, (0, 1e4)), Parameter("nb", 700.0, (0, 1e4))
    mu, sigma = Parameter("mu", 2.0, (0, 5)), Parameter("sigma", 0.3, (0.05, 2))
    lam = Parameter("lam", -0.5, (-5, 0))
    model = SumPdf([Gaussian(x, mu, sigma), Exponential(x, lam)], yields=[ns, nb])
    rng = np.random.default_rng(2)
    data = model.sample(1000, rng)
    w = rng.uniform(0.5, 1.5, data.size)
    c1, c2 = GaussianConstraint(sigma, 0.31, 0.02), PoissonConstraint(lam, 10.0, scale=-20.0)
    nll = UnbinnedNLL(model, data, weights=w, extended=True, constraints=[c1, c2])
    p = {"ns": 310.0, "nb": 690.0, "mu": 2.05, "sigma": 0.29, "lam": -0.45}
    values = {q: p[q.name] for q in nll.parameters}
    nu = p["ns"] + p["nb"]
    expected = (-np.sum(w * model.log_prob(data, values)) + nu - np.sum(w) * np.log(nu)
                + 0.5 * ((0.29 - 0.31) / 0.02) ** 2 + (-20 * -0.45) - 10 * np.log(-20 * -0.45))
    vec = np.array([p[q.name] for q in nll.parameters])
    assert nll(vec) == pytest.approx(expected, rel=1e-12)
    tape.check_grads(nll.function, vec, rtol=1e-6, atol=1e-6)


def test_data_outside_the_range():
    x = Observable("x", (0.0, 1.0))
    g = Gaussian(x, Parameter("mu", 0.5), 0.2)
    data = np.array([0.1, 1.5, 0.3, -0.2, 0.9])
    with pytest.raises(ValueError, match=r"2 events .* outside.*first at event 1"):
        UnbinnedNLL(g, data)
    nll = UnbinnedNLL(g, data, drop_outside=True)
    assert nll.ndata == 3
    with pytest.raises(tape.DataError, match="NaN"):
        UnbinnedNLL(g, np.array([0.1, np.nan]))


def test_binned_nll(tut):
    x = Observable("x", (0.0, 10.0))
    mu, sigma = Parameter("mu", 5.0), Parameter("sigma", 1.0, (0.1, 5))
    g = Gaussian(x, mu, sigma)
    counts, edges = np.histogram(g.sample(10_000, np.random.default_rng(5)), 50, (0, 10))
    nll = BinnedNLL(g, (counts, edges))
    from scipy.stats import norm
    p = np.array([5.1, 0.95])
    cdf = norm.cdf(edges, 5.1, 0.95)
    frac = np.diff(cdf) / (cdf[-1] - cdf[0])
    mu_b = counts.sum() * frac
    assert nll(p) == pytest.approx(np.sum(mu_b - counts * np.log(mu_b)), rel=1e-11)
    tape.check_grads(nll.function, p)
    m = nll.fit()
    assert m.valid and abs(m.values["mu"] - 5.0) < 5 * m.errors["mu"]
    with pytest.raises(ValueError, match="edges"):
        BinnedNLL(g, (counts, edges[:-1]))


def test_binned_nll_from_boost_histogram():
    bh = pytest.importorskip("boost_histogram")
    x = Observable("x", (0.0, 10.0))
    g = Gaussian(x, Parameter("mu", 5.0), 1.0)
    h = bh.Histogram(bh.axis.Regular(20, 0, 10))
    h.fill(g.sample(2000, np.random.default_rng(0)))
    assert np.isfinite(BinnedNLL(g, h)(np.array([5.0])))


def test_simultaneous_shares_parameters_by_name():
    x = Observable("x", (-5, 5))
    mu = Parameter("mu", 0.0)
    s1, s2 = Parameter("s1", 1.0, (0.1, 5)), Parameter("s2", 2.0, (0.1, 5))
    rng = np.random.default_rng(3)
    a = UnbinnedNLL(Gaussian(x, mu, s1), rng.normal(0.1, 1.0, 300).clip(-4.9, 4.9))
    b = UnbinnedNLL(Gaussian(x, mu, s2), rng.normal(0.1, 2.0, 300).clip(-4.9, 4.9))
    s = SimultaneousNLL({"a": a, "b": b})
    assert s.names == ["mu", "s1", "s2"]
    p = np.array([0.05, 1.1, 1.9])
    assert s(p) == pytest.approx(a(p[[0, 1]]) + b(p[[0, 2]]), rel=1e-14)
    g = s.grad(p)
    np.testing.assert_allclose(g, tape.numerical_grad(s, p), rtol=1e-6)
    h = s.hessian(p)
    assert h[1, 2] == 0.0 and h[0, 0] == pytest.approx(a.hessian(p[[0, 1]])[0, 0] + b.hessian(p[[0, 2]])[0, 0])
    v, g3, h3 = s.function.value_grad_hessian(p)
    assert v == pytest.approx(s(p), rel=1e-14) and s.function.hessian_in_one_pass
    np.testing.assert_allclose(g3, g, rtol=1e-13)
    np.testing.assert_allclose(h3, h, rtol=1e-13)
    assert s.fit().valid


def test_simultaneous_fit_with_a_category_without_free_parameters():
    """A category whose parameters are all fixed: its Function takes no parameters, and its
    value, gradient and Hessian still add to the sum (value_grad_hessian of zero parameters)."""
    x = Observable("x", (-5.0, 5.0))
    mu, s = Parameter("mu", 0.0), Parameter("s", 1.0, limits=(0.1, 5))
    c = Parameter("c", 0.5, fixed=True)
    rng = np.random.default_rng(0)
    a = UnbinnedNLL(Gaussian(x, mu, s), rng.normal(0.2, 1.1, 300))
    b = UnbinnedNLL(Gaussian(x, c, 2.0), rng.normal(0.5, 1.0, 100))
    assert b.function.n_params == 0
    v, g, h = b.function.value_grad_hessian(np.zeros(0))
    assert v == pytest.approx(b.function(np.zeros(0)), rel=1e-14) and g.shape == (0,)
    assert h.shape == (0, 0)
    sim = SimultaneousNLL({"a": a, "b": b})
    alone = a.fit()
    for method in ("migrad", "newton"):
        r = sim.fit(method=method)
        assert r.valid
        np.testing.assert_allclose(np.array(r.values), np.array(alone.values), atol=1e-5)
        assert r.fval == pytest.approx(alone.fval + b.function(np.zeros(0)), abs=1e-6)


def test_fit_recovers_the_tutorial_truth(tut):
    model, x, params, data = tut
    nll = UnbinnedNLL(model, data)
    m = nll.fit()
    assert m.valid
    for name, truth in zip(tutorial.NAMES, tutorial.TRUTH):
        assert abs(m.values[name] - truth) < 4 * m.errors[name], name


def test_pull_study_of_the_tutorial_model():
    """>= 100 small toys, one recorded tape replayed with_data: pulls have mean ~0, width ~1."""
    model, x, params = build()
    rng = np.random.default_rng(2024)
    nll = UnbinnedNLL(model, model.sample(2000, rng))
    truth = nll.start.copy()
    results = nll.toys(120, rng)
    for name in ("mu", "bkgfrac", "a0"):
        i = nll.names.index(name)
        pulls = np.array([(r.values[i] - truth[i]) / r.errors[i] for r in results if r.valid])
        n = len(pulls)
        assert n >= 90
        assert abs(pulls.mean()) < 3.5 / np.sqrt(n), name
        assert abs(pulls.std(ddof=1) - 1.0) < 3.5 / np.sqrt(2 * (n - 1)), name


def test_data_from_a_root_file(tmp_path):
    uproot = pytest.importorskip("uproot")
    from models import read_root
    x = Observable("x", (-5, 5))
    g = Gaussian(x, Parameter("mu", 0.2), Parameter("sigma", 1.0, (0.1, 5)))
    events = g.sample(3000, np.random.default_rng(8))
    path = tmp_path / "events.root"
    with uproot.recreate(path) as f:
        f["tree"] = {"x": events, "other": np.arange(3000.0)}
    data = read_root(path, "tree", ["x"])
    np.testing.assert_array_equal(data["x"], events)
    assert UnbinnedNLL(g, data)([0.2, 1.0]) == pytest.approx(UnbinnedNLL(g, events)([0.2, 1.0]))
    with pytest.raises(KeyError, match="no branches"):
        read_root(path, "tree", ["y"])
    with pytest.raises(KeyError, match="no tree"):
        read_root(path, "nope", ["x"])
