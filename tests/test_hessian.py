"""Exact second derivatives: forward-over-reverse Hessians and Hessian-vector products."""
import numpy as np
import pytest

import tape
from models import tutorial


def fd_hessian(f, p):
    """Central differences of the exact reverse gradient."""
    return np.array([tape.numerical_grad(lambda q: f.grad(q)[i], p) for i in range(p.size)])


@pytest.fixture(scope="module")
def tutorial_f():
    x = tutorial.sample(5000, np.random.default_rng(11))
    return tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x})


def test_tutorial_hessian_matches_finite_differences(tutorial_f):
    for p in (tutorial.TRUTH, tutorial.TRUTH * 1.04):
        h = tutorial_f.hessian(p)
        assert h.shape == (7, 7)
        np.testing.assert_array_equal(h, h.T)
        ref = fd_hessian(tutorial_f, p)
        scale = np.abs(ref).max()
        np.testing.assert_allclose(h, ref, rtol=1e-6, atol=1e-7 * scale)


def test_hvp_is_hessian_times_vector(tutorial_f, rng):
    p = tutorial.TRUTH * 0.98
    h = tutorial_f.hessian(p)
    for _ in range(3):
        v = rng.normal(size=7)
        np.testing.assert_allclose(tutorial_f.hvp(p, v), h @ v, rtol=1e-10, atol=1e-8)
    with pytest.raises(ValueError, match="length 7"):
        tutorial_f.hvp(p, np.ones(3))


def test_analytic_hessian_of_a_gaussian_nll(rng):
    x = rng.normal(0.3, 1.5, 400)

    def nll(p, x):
        mu, sigma = p
        return np.sum(0.5 * ((x - mu) / sigma) ** 2 + np.log(sigma))

    f = tape.record(nll, [0.0, 1.0], data={"x": x})
    mu, s = 0.2, 1.3
    r = x - mu
    n = x.size
    expected = np.array([[n / s**2, 2 * np.sum(r) / s**3],
                         [2 * np.sum(r) / s**3, 3 * np.sum(r**2) / s**4 - n / s**2]])
    np.testing.assert_allclose(f.hessian([mu, s]), expected, rtol=1e-12)


def test_hessian_through_every_kind_of_node(rng):
    """Elementwise, trailing reductions, gathers, matmul, where and logsumexp, differentiated twice."""
    x = rng.uniform(0.2, 2.0, (300, 3))

    def fn(p, x):
        w = np.stack([p[:3], p[1:4]], axis=1)           # (3, 2) parameter matrix
        z = x @ w                                         # (N, 2)
        a = tape.logsumexp(np.tanh(z) * p[0], axis=1)     # (N,)
        b = np.where(x[:, 0] > 1.0, np.log1p(x[:, 1] * p[3] ** 2), np.sqrt(1 + x[:, 2] * p[2] ** 2))
        return np.sum(a + b * tape.sigmoid(p[1])) + tape.lgamma(p[0] + 3.0)

    p = np.array([0.4, -0.3, 0.8, 0.5])
    f = tape.record(fn, p, data={"x": x})
    h = f.hessian(p)
    np.testing.assert_allclose(h, fd_hessian(f, p), rtol=1e-6, atol=1e-6)


def test_hessian_of_a_function_without_data():
    f = tape.record(lambda p: p[0] ** 3 * p[1] + np.exp(p[1]), [1.0, 2.0])
    p = np.array([1.5, 0.5])
    expected = [[6 * p[0] * p[1], 3 * p[0] ** 2], [3 * p[0] ** 2, np.exp(p[1])]]
    np.testing.assert_allclose(f.hessian(p), expected, rtol=1e-14)


@pytest.mark.parametrize("chunk", [1, 7, 1000, 4999, 5000, 10**6])
def test_chunked_hessian_equals_unchunked(chunk):
    x = tutorial.sample(5000, np.random.default_rng(21))
    p = tutorial.TRUTH * 1.02
    ref = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x}, chunk_size=5000)
    f = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x}, chunk_size=chunk)
    np.testing.assert_allclose(f.hessian(p), ref.hessian(p), rtol=1e-12, atol=1e-12 * np.abs(ref.hessian(p)).max())
    np.testing.assert_allclose(f.hvp(p, np.ones(7)), ref.hvp(p, np.ones(7)), rtol=1e-12)


def test_hessian_in_blocks_of_columns(rng):
    """More parameters than one block: the blocks assemble the full symmetric matrix."""
    from tape.function import HESSIAN_BLOCK
    n = HESSIAN_BLOCK + 5
    x = rng.normal(size=(200, n))

    def fn(p, x):
        z = x @ p
        return np.sum(tape.softplus(z)) + 0.5 * np.sum(p ** 4)

    p = rng.normal(size=n) * 0.3
    f = tape.record(fn, p, data={"x": x})
    s = 1.0 / (1.0 + np.exp(-(x @ p)))
    expected = (x.T * (s * (1 - s))) @ x + np.diag(6 * p ** 2)
    np.testing.assert_allclose(f.hessian(p), expected, rtol=1e-11, atol=1e-11)
    for method in ("blocks", "hvp"):
        np.testing.assert_allclose(f.hessian(p, method=method), expected, rtol=1e-11, atol=1e-11)
    with pytest.raises(ValueError, match="method"):
        f.hessian(p, method="numerical")


def test_default_hessian_method_follows_the_event_count(rng):
    """Many parameters on few events (binned): hvp columns, no block programs built; many
    events: block programs."""
    from tape.function import HESSIAN_BLOCK, HVP_LOOP_MAX_EVENTS
    n = HESSIAN_BLOCK + 3
    for events, blocks in ((50, False), (HVP_LOOP_MAX_EVENTS + 1, True)):
        x = rng.normal(size=(events, n))
        f = tape.record(lambda p, x: np.sum(np.exp(0.1 * (x @ p))), np.zeros(n), data={"x": x})
        f.hessian(np.zeros(n))
        built = {k[0] if isinstance(k, tuple) else k for k in f._programs}
        assert ("hessian" in built) == blocks and ("hvp" in built) != blocks


def test_memory_limit_bounds_the_chunk_buffers():
    x = tutorial.sample(50_000, np.random.default_rng(2))
    f = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x}, memory_limit="200kB")
    for kind in ("value", "grad", ("hessian", 0, 7)):
        spec = f._spec(kind)
        rows = f._program(kind).chunk_rows
        assert rows * spec["event_row_size"] * 8 * tape.get_num_threads() <= 200_000
    p = tutorial.TRUTH * 1.01
    ref = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x})
    assert f(p) == pytest.approx(ref(p), rel=1e-13)
    with pytest.raises(ValueError, match="smaller than the buffers of one event"):
        tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x}, memory_limit=16)(p)


def test_hessian_through_sparse_ops(rng):
    """spmv (with event rows and on parameters), scatter_prod, polyval and concat, differentiated
    twice."""
    import scipy.sparse as sp
    a = sp.random(6, 4, density=0.6, random_state=3, format="csr")
    b = rng.normal(size=(5, 4))
    x = rng.uniform(0.2, 2.0, (200, 4))

    def fn(p, x):
        z = tape.spmv(a, x * p)                                   # (N, 6)
        q = tape.scatter_prod(p ** 2 + 0.5, [0, 1, 0, 2], (3,))
        c = tape.polyval(np.arange(12.0).reshape(3, 4) / 10, np.concatenate([p[:2] * p[2], p[2:]]))
        w = tape.polyval(np.stack([p, p * p]), x[:, ::-1], at=[0, 3, 3, 1])   # traced coeffs
        return (np.sum(np.log1p(z ** 2)) + np.sum(tape.spmv(b, p) ** 3) + np.sum(q * q)
                + np.sum(c ** 2) + np.sum(np.sin(w)))

    p = np.array([0.4, -0.3, 0.8, 0.5])
    f = tape.record(fn, p, data={"x": x})
    h = f.hessian(p)
    np.testing.assert_allclose(h, fd_hessian(f, p), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(f.hvp(p, np.arange(1.0, 5.0)), h @ np.arange(1.0, 5.0), rtol=1e-12)


def test_upper_triangle_blocks_equal_full_columns(rng):
    """Parameters taken apart (mu, s = p): block programs compute rows 0..j of column j only;
    the assembled matrix equals the hvp columns (the full columns) to rounding."""
    n = 19                                    # two blocks, the second partial
    x = rng.normal(size=(300, 3))

    def fn(p, x):
        parts = list(p)
        acc = 0.0
        for k in range(0, n - 1, 2):
            acc = acc + np.sum(np.log1p((x[:, 0] * parts[k] + x[:, 1] * parts[k + 1]) ** 2))
        return acc + np.sum(np.exp(x[:, 2] * parts[-1])) * parts[0] ** 2

    p = rng.uniform(0.2, 0.8, n)
    f = tape.record(fn, p, data={"x": x})
    assert f._grad_components() is not None
    np.testing.assert_allclose(f.hessian(p, method="blocks"), f.hessian(p, method="hvp"),
                               rtol=1e-11, atol=1e-11)
    g = tape.record(lambda q, x: np.sum(np.exp(x @ q[:3])), p[:3], data={"x": x})
    assert g._grad_components() is None      # a vector use of the parameters: full columns


def test_hessian_of_a_floored_log_density(rng):
    """log(max(pdf, c)) records as floor_log: its Hessian (through floor_recip's derivative)
    matches finite differences, with events on both sides of the floor (zero there)."""
    x = rng.choice([-1.0, 1.0], 3000) * rng.uniform(0.3, 2.0, 3000)

    def fn(p, x):
        return -np.sum(np.log(np.maximum(p[0] * x + p[1] * x * x + p[2], 0.25)))

    f = tape.record(fn, [1.0, 0.5, 0.1], data={"x": x})
    assert "floor_log" in {n.op for n in f._graph.nodes}
    p = np.array([1.1, 0.4, 0.05])
    assert f(p) == pytest.approx(fn(p, x), rel=1e-13)
    np.testing.assert_allclose(f.hessian(p), fd_hessian(f, p), rtol=1e-6, atol=1e-6)
    below = p[0] * x + p[1] * x * x + p[2] < 0.25
    assert 0 < below.sum() < x.size     # both sides of the floor are exercised


@pytest.mark.parametrize("n, events, parts", [(7, 300, True), (7, 300, False),
                                              (21, 5000, True), (21, 50, True)])
def test_value_grad_hessian_equals_the_separate_calls(rng, n, events, parts):
    """One pass for value, gradient and Hessian (block programs, parameters taken apart or used
    as a vector, one block or several), or separate calls (hvp columns on few events): the same
    numbers as ``f(p)``, ``f.grad(p)`` and ``f.hessian(p)``, to rounding."""
    x = rng.normal(size=(events, n))

    def fn(p, x):
        if parts:
            q = list(p)
            z = sum(x[:, k] * q[k] for k in range(n))
            return np.sum(np.log1p(z ** 2)) + q[0] ** 2 * q[1] + np.sum(np.exp(0.1 * x[:, 0] * q[2]))
        return np.sum(np.log1p((x @ p) ** 2)) + np.sum(p ** 4)

    p = rng.uniform(-0.5, 0.5, n)
    f = tape.record(fn, p, data={"x": x})
    assert (f._components() is not None) == parts
    v, g, h = f.value_grad_hessian(p)
    assert f.hessian_in_one_pass == (n <= 16)
    assert v == pytest.approx(f(p), rel=1e-13)
    np.testing.assert_allclose(g, f.grad(p), rtol=1e-12, atol=1e-12 * np.abs(g).max())
    np.testing.assert_allclose(h, f.hessian(p), rtol=1e-12, atol=1e-12 * np.abs(h).max())
    np.testing.assert_array_equal(h, h.T)
    # subsampled: the same pass on the same blocks of events
    x = rng.normal(size=(4096, n))
    s = f.with_data(x=x).subsample(2)
    v, g, h = s.value_grad_hessian(p)
    assert v == pytest.approx(s(p), rel=1e-13)
    np.testing.assert_allclose(g, s.grad(p), rtol=1e-12, atol=1e-12 * np.abs(g).max())
    np.testing.assert_allclose(h, s.hessian(p), rtol=1e-12, atol=1e-12 * np.abs(h).max())
