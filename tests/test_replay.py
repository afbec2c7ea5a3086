"""Replay: chunking, new data, summation accuracy, multi-pass tapes, determinism."""
import math

import numpy as np
import pytest

import tape
from models import tutorial


@pytest.fixture(scope="module")
def events():
    return tutorial.sample(20_011, np.random.default_rng(7))


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000, 20_011, 50_000])
def test_chunk_size_changes_only_summation_order(events, chunk):
    p = tutorial.TRUTH * 1.03
    ref = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": events})
    f = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": events}, chunk_size=chunk)
    v0, g0 = ref.value_and_grad(p)
    v1, g1 = f.value_and_grad(p)
    assert v1 == pytest.approx(v0, rel=1e-13)
    np.testing.assert_allclose(g1, g0, rtol=1e-11, atol=1e-9)


def test_with_data_equals_fresh_recording(events):
    p = tutorial.TRUTH * 0.97
    f = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": events[:1000]})
    new = tutorial.sample(3333, np.random.default_rng(8))
    g = f.with_data(x=new)
    fresh = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": new})
    assert g(p) == fresh(p)
    np.testing.assert_array_equal(g.grad(p), fresh.grad(p))
    assert g.n_events == 3333 and f.n_events == 1000
    assert f(p) == pytest.approx(tutorial.nll(p, events[:1000]), rel=1e-13)


def test_mean_over_events_follows_new_data(events):
    f = tape.record(lambda p, x: np.mean((x - p[0]) ** 2), [0.0], data={"x": events[:100]})
    g = f.with_data(x=events[:250])
    assert g([5.0]) == pytest.approx(np.mean((events[:250] - 5.0) ** 2), rel=1e-13)


def test_results_are_identical_from_run_to_run(events):
    f = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": events})
    p = tutorial.TRUTH * 1.1
    a = [f.value_and_grad(p) for _ in range(3)]
    assert all(v == a[0][0] and np.array_equal(g, a[0][1]) for v, g in a)


def test_large_event_sum_matches_fsum():
    """A 10^7-event sum of log terms is accurate to 1e-13 relative (pairwise + compensated)."""
    x = np.random.default_rng(3).uniform(0.5, 3.0, 10_000_000)
    f = tape.record(lambda p, x: np.sum(np.log(x * p[0])), [1.0], data={"x": x})
    exact = math.fsum(np.log(x))
    assert abs(f([1.0]) - exact) <= 1e-13 * abs(exact)
    naive = 0.0
    # the compensated accumulation beats naive chunk-by-chunk addition
    for c in np.array_split(np.log(x), 1000):
        naive += float(np.sum(c))
    assert abs(f([1.0]) - exact) <= abs(naive - exact) + 1e-300


def test_logsumexp_over_events_takes_two_passes(events):
    """The shift of a log-sum-exp over events needs a full pass before the sum: two body passes."""
    x = events[:2000]

    def fn(p, x):
        return tape.logsumexp(-0.5 * ((x - p[0]) / p[1]) ** 2)

    f = tape.record(fn, [5.0, 1.0], data={"x": x}, chunk_size=300)
    p = np.array([4.8, 0.9])
    from scipy.special import logsumexp
    assert f(p) == pytest.approx(logsumexp(-0.5 * ((x - p[0]) / p[1]) ** 2), rel=1e-13)
    assert len(f.stats("value")["body"]) == 2
    tape.check_grads(f, p)


def test_parameter_only_work_is_hoisted_out_of_the_event_body(events):
    """Normalization integrals (erf of parameters) run in the prelude, not once per event."""
    f = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": events})
    spec = f._spec("value")
    from tape._replay import FIELDS, KINDS, UNARY
    code = spec["code"]
    s0, s1 = spec["passes"][0][:2]
    body = code[s0:s1]
    erf_in_body = [(row[FIELDS["kind"]] == KINDS["unary"]) and row[FIELDS["fn"]] == UNARY["erf"]
                   for row in body]
    assert not any(erf_in_body)
    pre = code[slice(*spec["prelude"])]
    assert sum((row[FIELDS["kind"]] == KINDS["unary"]) and row[FIELDS["fn"]] == UNARY["erf"]
               for row in pre) == 4
    # two exps and one log per event, nothing more expensive
    transcendental = [row for row in body if row[FIELDS["kind"]] == KINDS["unary"]]
    assert sorted(int(r[FIELDS["fn"]]) for r in transcendental) == sorted(
        [UNARY["exp"], UNARY["exp"], UNARY["log"], UNARY["square"], UNARY["square"]][: len(transcendental)])


def test_common_subexpressions_are_shared():
    def fn(p):
        a = np.exp(p[0] * 2.0)
        b = np.exp(p[0] * 2.0)
        return a + b

    f = tape.record(fn, [0.5])
    exps = [n for n in f._graph.nodes if n.op == "exp"]
    assert len(exps) == 1
    assert f([0.5]) == pytest.approx(2 * math.exp(1.0), rel=1e-15)


def test_constants_are_folded():
    f = tape.record(lambda p: p[0] * (np.exp(np.float64(2.0)) + 1.0), [1.0])
    ops = [n.op for n in f._graph.nodes]
    assert "exp" not in ops
    assert f([2.0]) == pytest.approx(2 * (math.exp(2.0) + 1.0), rel=1e-15)


def test_event_sums_keep_infinities():
    """An infinite term makes an infinite event sum, not NaN (the compensation of the sum
    across chunks would compute inf - inf)."""
    x = np.arange(5000.0)
    f = tape.record(lambda p, x: np.sum(x * 0.0 + p[0]), [1.0], data={"x": x}, chunk_size=64)
    assert f([np.inf]) == np.inf and f([-np.inf]) == -np.inf
    assert np.isnan(f([np.nan])) and f([2.0]) == 10000.0
