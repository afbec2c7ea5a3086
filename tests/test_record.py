"""Recording: tracers, the numpy protocols, and the errors that name what is wrong."""
import math
import threading

import numpy as np
import pytest
from scipy import special

import tape
from models import tutorial


def gauss_nll(p, x):
    mu, sigma = p
    return np.sum(0.5 * ((x - mu) / sigma) ** 2 + np.log(sigma))


@pytest.fixture
def x(rng):
    return rng.normal(1.0, 2.0, 500)


def test_value_grad_and_types(x):
    f = tape.record(gauss_nll, [0.0, 1.0], data={"x": x})
    p = np.array([0.7, 1.9])
    v = f(p)
    assert isinstance(v, float)
    assert v == pytest.approx(gauss_nll(p, x), rel=1e-14)
    g = f.grad(p)
    assert g.shape == (2,)
    # analytic gradient of the Gaussian NLL
    r = (x - p[0]) / p[1]
    expected = [-np.sum(r) / p[1], np.sum(-r ** 2 / p[1] + 1 / p[1])]
    np.testing.assert_allclose(g, expected, rtol=1e-12)
    v2, g2 = f.value_and_grad(p)
    assert v2 == v and np.array_equal(g, g2)
    assert f.n_params == 2 and f.n_events == 500


def test_tutorial_model_matches_numpy_and_finite_differences(rng):
    x = tutorial.sample(5000, rng)
    f = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x})
    for p in (tutorial.TRUTH, tutorial.TRUTH * 1.05, tutorial.TRUTH * 0.93):
        assert f(p) == pytest.approx(tutorial.nll(p, x), rel=1e-13)
        tape.check_grads(f, p, rtol=1e-6, atol=1e-6)


def test_plain_numpy_and_scipy_record_unchanged(rng):
    x = rng.uniform(0.5, 2.0, 200)

    def fn(p, x):
        a = np.exp(-p[0] * x) + special.erf(x * p[1]) + np.logaddexp(x, p[0])
        b = np.where(x > 1.0, np.log(x) * p[1], np.sqrt(x) * p[0])
        return np.mean(a * b) + np.max(p) + np.dot(p, p) + np.clip(p[0], 0.0, 1.0)

    p = np.array([0.3, 0.8])
    f = tape.record(fn, p, data={"x": x})
    assert f(p) == pytest.approx(fn(p, x), rel=1e-13)
    tape.check_grads(f, p)


def test_no_data_and_constant_outputs():
    f = tape.record(lambda p: tape.sum(p ** 2), [1.0, 2.0])
    assert f([1.0, 2.0]) == 5.0
    np.testing.assert_array_equal(f.grad([1.0, 2.0]), [2.0, 4.0])
    c = tape.record(lambda p: 3.0, [1.0])
    assert c([5.0]) == 3.0
    np.testing.assert_array_equal(c.grad([5.0]), [0.0])


def test_tracing_error_on_branching():
    with pytest.raises(tape.TracingError, match="tape.where"):
        tape.record(lambda p: p[0] if p[0] > 0 else -p[0], [1.0])
    with pytest.raises(tape.TracingError, match="float"):
        tape.record(lambda p: math.exp(p[0]), [1.0])
    with pytest.raises(tape.TracingError, match="numpy array"):
        tape.record(lambda p: np.asarray(p).sum(), [1.0])


def test_unsupported_numpy_function_is_named():
    with pytest.raises(tape.TracingError, match="cumsum"):
        tape.record(lambda p: np.cumsum(p)[0], [1.0, 2.0])
    with pytest.raises(tape.TracingError, match="arctan2"):
        tape.record(lambda p: np.arctan2(p[0], p[1]), [1.0, 2.0])


def test_event_axis_misuse_is_explained(x):
    with pytest.raises(tape.TracingError, match="event axis"):
        tape.record(lambda p, x: np.sum(x[0] * p[0]), [1.0], data={"x": x})
    with pytest.raises(tape.TracingError, match="weights"):
        tape.record(lambda p, x: np.sum(x[x > 0] * p[0]), [1.0], data={"x": x})
    with pytest.raises(tape.ShapeError, match="sum over events"):
        tape.record(lambda p, x: x * p[0], [1.0], data={"x": x})


def test_wrong_parameter_length(x):
    f = tape.record(gauss_nll, [0.0, 1.0], data={"x": x})
    with pytest.raises(ValueError, match="length 2"):
        f([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="length 2"):
        f.grad([1.0])
    with pytest.raises(ValueError, match="length 2"):
        f.jvp([1.0, 2.0], [1.0])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_data_is_rejected(x, bad):
    y = x.copy()
    y[17] = bad
    with pytest.raises(tape.DataError, match="'x'.*event 17"):
        tape.record(gauss_nll, [0.0, 1.0], data={"x": y})
    f = tape.record(gauss_nll, [0.0, 1.0], data={"x": x})
    with pytest.raises(tape.DataError, match="event 17"):
        f.with_data(x=y)


def test_mismatched_event_lengths(x):
    with pytest.raises(tape.DataError, match="different numbers of events"):
        tape.record(lambda p, x, w: np.sum(w * x * p[0]), [1.0], data={"x": x, "w": x[:-1]})


def test_with_data_names_and_shapes_checked(x):
    f = tape.record(gauss_nll, [0.0, 1.0], data={"x": x})
    with pytest.raises(tape.DataError, match="missing"):
        f.with_data(y=x)
    with pytest.raises(tape.DataError, match="rows of shape"):
        f.with_data(x=np.ones((10, 2)))
    with pytest.raises(tape.DataError, match="not numeric"):
        f.with_data(x=np.array(["a", "b"]))


def test_broadcast_errors_are_shape_errors(x):
    with pytest.raises(tape.ShapeError, match="event"):
        tape.record(lambda p, x: np.sum(x * p), [1.0, 2.0, 3.0], data={"x": x})


def test_options_validated(x):
    with pytest.raises(ValueError, match="chunk_size"):
        tape.record(gauss_nll, [0.0, 1.0], data={"x": x}, chunk_size=0)
    with pytest.raises(ValueError, match="memory_limit"):
        tape.record(gauss_nll, [0.0, 1.0], data={"x": x}, memory_limit="lots")
    f = tape.record(gauss_nll, [0.0, 1.0], data={"x": x}, memory_limit="1kB")
    assert f([0.0, 1.0]) == pytest.approx(gauss_nll([0.0, 1.0], x), rel=1e-13)


def test_traced_values_from_two_recordings_do_not_mix():
    keep = []
    tape.record(lambda p: keep.append(p) or tape.sum(p), [1.0])
    with pytest.raises(ValueError, match="two different recordings"):
        tape.record(lambda p: tape.sum(p + keep[0]), [1.0])


def test_threads_share_a_function(x):
    f = tape.record(gauss_nll, [0.0, 1.0], data={"x": x})
    points = [np.array([0.1 * i, 1.0 + 0.1 * i]) for i in range(8)]
    expected = [f.value_and_grad(p) for p in points]
    results = [None] * len(points)

    def work(i):
        for _ in range(50):
            results[i] = f.value_and_grad(points[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(points))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (v, g), (ve, ge) in zip(results, expected):
        assert v == ve and np.array_equal(g, ge)
