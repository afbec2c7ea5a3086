"""Function.subsample: every stride-th block of 1024 events, event sums scaled to all events.

The subsampled value, gradient and Hessian must equal those of the same likelihood written out
by hand on the selected rows (event sums times n / n_selected, other terms unchanged), for
every program (their default chunk sizes differ), any thread count and any memory limit.
"""
import numpy as np
import pytest

import tape
from tape.function import SUBSAMPLE_BLOCK
from models import tutorial


def nll_with_constraint(p, x):
    # an event sum plus terms that are not event sums (a constraint, n_events in a Poisson term)
    return tutorial.nll(p[:7], x) + 0.5 * ((p[1] - 0.5) / 0.1) ** 2 + 3.0 * np.log(p[6])


def selected(n, stride):
    rows = np.arange(n)
    return (rows // SUBSAMPLE_BLOCK) % stride == 0


def by_hand(p, x, stride):
    keep = selected(x.size, stride)
    return on_rows(p, x[keep], x.size / keep.sum())


def on_rows(p, xs, scale):
    return scale * tutorial.nll(p, xs) + 0.5 * ((p[1] - 0.5) / 0.1) ** 2 + 3.0 * np.log(p[6])


@pytest.fixture(scope="module")
def setup():
    x = tutorial.sample(20_000 + 321, np.random.default_rng(4))
    f = tape.record(nll_with_constraint, tutorial.TRUTH, data={"x": x})
    return f, x, tutorial.TRUTH * np.array([1.02, 0.97, 1.03, 0.99, 1.1, 0.9, 1.01])


@pytest.mark.parametrize("stride", [2, 3, 7, 19, 40])
def test_value_gradient_hessian_are_those_of_the_selected_rows(setup, stride):
    f, x, p = setup
    s = f.subsample(stride)
    keep = selected(x.size, stride)
    assert s.replayed_events == keep.sum() and s.n_events == x.size and s.stride == stride
    scale = x.size / keep.sum()
    exact = tape.record(lambda q, x: on_rows(q, x, scale), p, data={"x": x[keep]})
    assert s(p) == pytest.approx(by_hand(p, x, stride), rel=1e-12)
    v, g = s.value_and_grad(p)
    ve, ge = exact.value_and_grad(p)
    assert v == pytest.approx(ve, rel=1e-12)
    np.testing.assert_allclose(g, ge, rtol=1e-9, atol=1e-9 * np.abs(ge).max())
    h, he = s.hessian(p), exact.hessian(p)
    np.testing.assert_allclose(h, he, rtol=1e-8, atol=1e-9 * np.abs(he).max())
    # and the derivatives are those of the subsampled value (central differences)
    eps = 1e-6 * np.maximum(np.abs(p), 1.0)
    for i in range(p.size):
        d = np.zeros_like(p)
        d[i] = eps[i]
        fd = (s(p + d) - s(p - d)) / (2 * eps[i])
        assert fd == pytest.approx(g[i], rel=1e-5, abs=1e-5 * np.abs(g).max())


def test_stride_one_is_the_full_function(setup):
    f, x, p = setup
    s = f.subsample(1)
    assert s(p) == f(p) and np.array_equal(s.grad(p), f.grad(p))
    assert s.replayed_events == x.size


def test_stride_beyond_the_data_replays_the_first_block(setup):
    f, x, p = setup
    s = f.subsample(10**6)
    assert s.replayed_events == SUBSAMPLE_BLOCK
    assert s(p) == pytest.approx(by_hand(p, x, 10**6), rel=1e-12)


@pytest.mark.parametrize("limit", ["40kB", "300kB"])
def test_memory_limit_keeps_the_same_rows(setup, limit):
    f, x, p = setup
    g = tape.record(nll_with_constraint, tutorial.TRUTH, data={"x": x}, memory_limit=limit)
    s = g.subsample(3)
    assert s._program("value").chunk_rows <= SUBSAMPLE_BLOCK
    assert s(p) == pytest.approx(by_hand(p, x, 3), rel=1e-12)
    assert s.value_and_grad(p)[0] == pytest.approx(by_hand(p, x, 3), rel=1e-12)


def test_threads_give_the_same_numbers(setup):
    from tape import _replay
    f, x, p = setup
    s = f.subsample(2)
    n = tape.get_num_threads()
    _replay.set_min_parallel_events(0)
    try:
        tape.set_num_threads(1)
        one = (s(p), s.value_and_grad(p)[1], s.hessian(p))
        tape.set_num_threads(2)
        two = (s(p), s.value_and_grad(p)[1], s.hessian(p))
    finally:
        tape.set_num_threads(n)
        _replay.set_min_parallel_events(65536)
    assert one[0] == two[0]
    assert np.array_equal(one[1], two[1]) and np.array_equal(one[2], two[2])


def test_with_data_keeps_the_stride(setup):
    f, x, p = setup
    y = x[::-1].copy()
    s = f.subsample(5).with_data(x=y)
    assert s.stride == 5
    assert s(p) == pytest.approx(by_hand(p, y, 5), rel=1e-12)


def test_full_function_is_unchanged_after_subsampling(setup):
    f, x, p = setup
    before = f(p)
    f.subsample(4)(p)
    assert f(p) == before


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2"])
def test_bad_stride(setup, bad):
    f, _, _ = setup
    with pytest.raises((ValueError, TypeError), match="stride|int"):
        f.subsample(bad)


def hessian_strides(monkeypatch):
    """(list that records the stride of every Hessian evaluated from now on, alone or with the
    value and gradient, the original ``Function.hessian``)."""
    calls = []
    original = tape.Function.hessian

    def spy(self, p, **k):
        calls.append(self.stride)
        return original(self, p, **k)

    fused = tape.Function.value_grad_hessian

    def spy_fused(self, p):
        calls.append(self.stride)
        return fused(self, p)

    monkeypatch.setattr(tape.Function, "hessian", spy)
    monkeypatch.setattr(tape.Function, "value_grad_hessian", spy_fused)
    return calls, original


def test_migrad_seed_from_a_subsample_changes_nothing_but_the_seed(monkeypatch):
    """On many events Migrad's seed Hessian comes from a subsample; the minimum and the errors
    (from the exact Hessian of all events at the end point) are those of the exact seed."""
    fit_module = __import__("sys").modules["tape.fit"]
    x = tutorial.sample(40_000, np.random.default_rng(6))
    f = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x})
    start = tutorial.TRUTH * np.array([1.01, 1.05, 1.05, 0.97, 1.05, 1.05, 1.03])
    kw = dict(names=list(tutorial.NAMES), limits=tutorial.LIMITS)
    exact = tape.fit(f, start, **kw)
    monkeypatch.setattr(fit_module, "SEED_EVENTS", 4096)
    assert fit_module._seed_function(f).stride == 8
    calls, original = hessian_strides(monkeypatch)
    sub = tape.fit(f, start, **kw)
    assert calls[0] == 8 and all(c == 1 for c in calls[1:]) and len(calls) >= 2
    assert sub.valid and exact.valid
    assert abs(sub.fval - exact.fval) < 1e-6
    # the errors come from a full Hessian within Minuit's tolerance of the minimum (where
    # Migrad ended, which the seed moves a little): equal to a percent on this curved NLL
    np.testing.assert_allclose(np.array(sub.errors), np.array(exact.errors), rtol=2e-2)

    # a refit that starts at the minimum: Migrad (strategy 2 ends with a HESSE of the user
    # Hessian) and a later HESSE through result.minuit must see the exact Hessian, not the
    # seed, although they ask for it at the start point
    calls.clear()
    again = tape.fit(f, np.array(sub.values), strategy=2, **kw)
    assert calls[0] == 8
    m = again.minuit
    from iminuit import Minuit
    ref = Minuit(lambda q: f(q), np.array(m.values), grad=f.grad,
                 hessian=lambda q: original(f, q))
    ref.errordef, ref.limits = 0.5, tutorial.LIMITS
    ref.hesse()
    np.testing.assert_allclose(np.array(m.errors), np.array(ref.errors), rtol=1e-4)
    m.hesse()
    np.testing.assert_allclose(np.array(m.errors), np.array(ref.errors), rtol=1e-4)


def test_newton_far_from_the_minimum_uses_subsample_hessians(monkeypatch):
    """On many events Newton's models far from the minimum take their Hessians from a
    subsample; near it and at the end the exact ones: the minimum and the errors are those of
    Newton on exact Hessians throughout, to rounding."""
    import importlib
    newton_module = importlib.import_module("tape.newton")
    x = tutorial.sample(40_000, np.random.default_rng(7))
    f = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x})
    start = tutorial.TRUTH * np.array([1.01, 1.05, 1.05, 0.97, 1.05, 1.05, 1.03])
    kw = dict(names=list(tutorial.NAMES), limits=tutorial.LIMITS, method="newton")
    exact = tape.fit(f, start, **kw)
    monkeypatch.setattr(newton_module, "FAR_EVENTS", (4096,))
    calls, original = hessian_strides(monkeypatch)
    sub = tape.fit(f, start, **kw)
    assert calls[0] == 8 and calls[-1] == 1
    # once exact, exact to the end (the far phase does not come back)
    first_exact = calls.index(1)
    assert all(c == 1 for c in calls[first_exact:])
    assert sub.valid and exact.valid
    assert abs(sub.fval - exact.fval) < 1e-6
    # the same minimum within the EDM goal (1e-7: a few 1e-4 standard deviations)
    assert np.all(np.abs(np.array(sub.values) - np.array(exact.values))
                  < 2e-3 * np.array(exact.errors))
    np.testing.assert_allclose(np.array(sub.errors), np.array(exact.errors), rtol=1e-3)
    np.testing.assert_array_equal(sub.hessian, original(f, np.array(sub.values)))


def test_newton_from_the_minimum_without_final_hessian(monkeypatch):
    """A refit that starts at the minimum (a scan point, say) with final_hessian=False: the
    subsample model puts the minimum here, and only an exact Hessian may say so (the first
    version tried steps of 1e-15 until its trust region collapsed, and reported invalid)."""
    import importlib
    newton_module = importlib.import_module("tape.newton")
    monkeypatch.setattr(newton_module, "FAR_EVENTS", (4096,))
    x = tutorial.sample(40_000, np.random.default_rng(7))
    f = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x})
    kw = dict(names=list(tutorial.NAMES), limits=tutorial.LIMITS, method="newton")
    first = tape.fit(f, tutorial.TRUTH, **kw)
    again = tape.fit(f, np.array(first.values), final_hessian=False, **kw)
    assert first.valid and again.valid, again.message
    assert again.ngrad <= 2 and again.fval <= first.fval + 1e-9
    np.testing.assert_array_equal(again.hessian, f.hessian(np.array(again.values)))


def test_small_data_seeds_with_the_exact_hessian():
    fit_module = __import__("sys").modules["tape.fit"]
    x = tutorial.sample(5000, np.random.default_rng(6))
    f = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x})
    assert fit_module._seed_function(f) is None
    assert fit_module._seed_function(f.subsample(2)) is None


def test_pickle_and_save_keep_the_stride(setup, tmp_path):
    import pickle
    f, x, p = setup
    s = f.subsample(4)
    for back in (pickle.loads(pickle.dumps(s)), tape.load(_saved(s, tmp_path))):
        assert back.stride == 4 and back.replayed_events == s.replayed_events
        assert back(p) == s(p)


def _saved(f, tmp_path):
    path = str(tmp_path / "sub.tape")
    tape.save(f, path)
    return path
