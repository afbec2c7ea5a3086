"""Algebraic rewrites at record time: each keeps the numbers (against plain numpy and finite
differences) and takes passes over the events out of the body (counted in the lowered program)."""
import numpy as np
import pytest

import tape


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(3).uniform(0.5, 2.0, 5000)


def _body(f, kind="value"):
    return sum(f.stats(kind)["body"])


def _ops(f):
    """The event ops the value needs (dead nodes left behind by a rewrite excluded)."""
    from tape.passes.dce import live_nodes
    g = f._graph
    return [g.nodes[i].op for i in live_nodes(g, [f._out]) if g.nodes[i].event]


def _agrees(f, fn, p, x):
    """Value as numpy's, gradient and Hessian as finite differences of the value."""
    p = np.asarray(p, float)
    assert f(p) == pytest.approx(fn(p, x), rel=1e-12)
    tape.check_grads(f, p)
    h = f.hessian(p)
    num = np.array([tape.numerical_grad(lambda q: f.grad(q)[i], p, eps=1e-5)
                    for i in range(p.size)])
    np.testing.assert_allclose(h, num, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(h).max()))


def test_scalar_factors_leave_products_of_event_arrays(x):
    """(x a)(x^2 b) -> (x x^2)(a b): one multiply per event instead of three."""
    def fn(p, x):
        return np.sum((x * p[0]) * (x ** 2 * p[1]) * np.exp(-x * p[2]))

    f = tape.record(fn, [1.2, 0.7, 0.3], data={"x": x})
    _agrees(f, fn, [1.3, 0.6, 0.4], x)
    # square, product, scale (inside the exp), exp, product; the scalars a b end up outside
    assert _body(f) <= 6


def test_square_of_a_scaled_array_is_shared(x):
    """Two Gaussians of one centred array square it once: ((x - m) / s)^2 = (x - m)^2 / s^2."""
    def fn(p, x):
        return -np.sum(np.log(p[3] * np.exp(-0.5 * ((x - p[0]) / p[1]) ** 2)
                              + (1 - p[3]) * np.exp(-0.5 * ((x - p[0]) / p[2]) ** 2)))

    f = tape.record(fn, [1.0, 0.5, 1.0, 0.7], data={"x": x})
    _agrees(f, fn, [1.1, 0.45, 1.2, 0.6], x)
    assert _ops(f).count("square") == 1


def test_product_minus_a_scalar_is_one_pass(x):
    """x y - c becomes a multiply-add (c negated once per call)."""
    def fn(p, x):
        return np.sum(np.log(x * x * p[0] - p[1]))

    f = tape.record(fn, [2.0, 0.1], data={"x": x})
    _agrees(f, fn, [1.9, 0.2], x)
    assert "muladd" in _ops(f) and _body(f) == 4    # multiply, multiply-add, log, sum


def test_masked_selections_keep_their_zero_branch():
    """where(m, x log(p), 0) stays 0 where m is false even at p = 0 (log p = -inf), and its
    zero keeps its sign: no scale or negation is moved out of a selection."""
    x = np.array([-1.0, -2.0, 3.0])
    f = tape.record(lambda p, x: np.sum(np.where(x > 5, x * np.log(p[0]), 0.0)), [1.0],
                    data={"x": x})
    assert f([0.0]) == 0.0
    g = tape.record(lambda p, x: np.sum(np.arctan(1.0 / np.where(x > 5, -(x * p[0]), 0.0))),
                    [1.0], data={"x": x[:2]})
    with np.errstate(divide="ignore"):
        assert g([1.0]) == pytest.approx(np.pi)


def test_product_minus_product_cancels_exactly():
    """E E - m m at E = m is 0, as numpy computes it: the multiply-add rounds its product (no
    fused multiply-add, whose exact product would leave the rounding error of m m behind)."""
    for m in (0.1, 0.3, 0.7, 2.9):
        e = np.array([m, 2.0 * m])
        f = tape.record(lambda p, e: np.sum(np.sqrt(e * e - p[0] * p[0])), [1.0], data={"e": e})
        assert f([m]) == np.sum(np.sqrt(e * e - m * m))
    x = np.array([1.0 / 3.0])
    f = tape.record(lambda p, x: np.sum(x * 3.0 - p[0]), [1.0], data={"x": x})
    assert f([1.0]) == np.sum(x * 3.0 - 1.0)


def test_negation_moves_out_of_a_product_of_event_arrays(x):
    def fn(p, x):
        return np.sum((-np.exp(x * p[0])) * np.log(x + p[1]))

    f = tape.record(fn, [0.3, 1.0], data={"x": x})
    _agrees(f, fn, [0.25, 1.2], x)
    assert "neg" not in _ops(f)


def test_gradient_and_hessian_bodies_of_a_mixture_shrink():
    """The tutorial NLL (two Gaussians and a Chebychev): the rewrites above take the event
    body of its value from 23 to 17 instructions, of its gradient from 45 to 31 and of its
    Hessian from 219 to 156 (a regression guard: more means a rule stopped firing)."""
    from models import tutorial
    x = tutorial.sample(1000, np.random.default_rng(0))
    f = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x})
    p = tutorial.TRUTH * 1.02
    f.hessian(p)
    assert _body(f) <= 17
    assert _body(f, "grad") <= 31
    assert _body(f, ("hessian", 0, 7)) <= 156


def test_floored_log_density_is_one_op():
    """The models' NLL takes log(max(pdf, 1e-300)): one floor_log per event (no maximum, no
    comparison), and the gradient and Hessian select nothing per event (no where)."""
    from models import UnbinnedNLL
    from models.tutorial_model import build
    model, _, _ = build()
    nll = UnbinnedNLL(model, model.sample(1000, np.random.default_rng(0)))
    f = nll.function
    f.hessian(nll.start)
    ops = _ops(f)
    assert "floor_log" in ops and "maximum" not in ops and "log" not in ops
    assert sum(f.stats(("hessian", 0, f.n_params))["body"]) <= 137
    from tape._replay import FIELDS, KINDS
    for kind in ("grad", ("hessian", 0, f.n_params)):
        spec = f._spec(kind)
        body = spec["code"][slice(*spec["passes"][0][:2])]
        assert not any(row[FIELDS["kind"]] == KINDS["where"] for row in body)
