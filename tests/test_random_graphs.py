"""Property tests on random expression graphs (hypothesis).

A strategy draws a small expression tree (depth <= 4) over parameters, event arrays and
constants, built from ops that are smooth where they are evaluated (denominators kept >= 1,
exponentials of bounded values, logs of values >= 1 or of softplus), plus reductions over events
inside the tree (multi-pass tapes), row reductions, indexing, stacking and matrix products with
constant and parameter matrices (vector mode, (N, 3) data), and the sparse and structured ops
(spmv, polyval at gathered points, scatter_prod, concat). The tree is turned into one
Python function that runs on tracers (recording) and on numpy arrays (the reference), returning a
sum over events plus possibly a parameter-only term. Properties:

- the replayed value equals the numpy evaluation;
- the reverse gradient matches central differences;
- the forward directional derivative equals grad . v;
- the chunk size changes nothing but the summation order.

Tolerances are scaled by the magnitudes of the intermediate values (the numpy evaluation records
them), so that they are honest for large and for cancelling sums alike. Kinks (maximum, abs,
where) are kept out of reach of the finite-difference steps with ``assume``.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings, strategies as st
from scipy import special

import tape

# On a failure hypothesis writes a patch file with libcst, whose import raises a
# DeprecationWarning (mypy_extensions.TypedDict) that `filterwarnings = error` would turn into an
# INTERNALERROR hiding the falsifying example.
pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")

SETTINGS = dict(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
N_PARAMS = 6          # p0, p1, p2 scalars; p[3:6] a (3,) vector
ONES3 = np.ones(3)

# ---------------------------------------------------------------------------------------------
# The op set of the trees. Each entry works on tracers and on numpy arrays alike.
UNARY = {
    "neg": lambda a: -a,
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    "arctan": np.arctan,
    "sigmoid": tape.sigmoid,
    "expit": special.expit,
    "square": np.square,
    "erf": special.erf,
    "exp_tanh": lambda a: np.exp(np.tanh(a)),
    "expm1_tanh": lambda a: tape.expm1(tape.tanh(a)),
    "log_1sq": lambda a: np.log(1.0 + np.square(a)),
    "log1p_sq": lambda a: np.log1p(a * a),
    "sqrt_1sq": lambda a: np.sqrt(1.0 + tape.square(a)),
    "log_softplus": lambda a: np.log(tape.softplus(np.tanh(a) * 3.0)),
    "erfc_tanh": lambda a: special.erfc(np.tanh(a) * 2.0),
    "lgamma_pos": lambda a: special.gammaln(1.5 + np.tanh(a)),
    "digamma_pos": lambda a: tape.digamma(1.5 + np.tanh(a)),
    "recip_1sq": lambda a: np.reciprocal(1.0 + a ** 2),
    "abs": np.abs,                       # kink at 0
    "cube": lambda a: a ** 3,
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div_1sq": lambda a, b: a / (1.0 + np.square(b)),
    "logaddexp": np.logaddexp,
    "maximum": np.maximum,               # kink at a == b
    "minimum": tape.minimum,             # kink at a == b
    "pow_pos": lambda a, b: np.sqrt(1.0 + a * a) ** np.tanh(b),
}
# Row reductions (vector mode): (N,3) or (3,) -> keepdims, so the result still broadcasts.
ROW = {
    "rowsum": lambda a: np.sum(a * ONES3, axis=-1, keepdims=True),
    "rowmean": lambda a: np.mean(a * ONES3, axis=-1, keepdims=True),
    "rowlse": lambda a: tape.logsumexp(a * ONES3, axis=-1, keepdims=True),
    "rowmax": lambda a: np.max(a * ONES3, axis=-1, keepdims=True),    # kink at ties
}
# Structural ops: indexing (gather), stack (scatter_add) + trailing sums, matrix products with a
# constant matrix. `z` is an all-zero event array: adding it makes an operand an event array.
C33 = np.array([[0.5, -0.2, 0.1], [0.3, 0.8, -0.6], [-0.4, 0.2, 0.7]])
SP33 = np.array([[0.5, 0.0, -1.2], [0.0, 0.0, 0.0], [0.3, 0.9, 0.0]])
PV3 = np.array([[0.2, -0.1, 0.4], [1.0, 0.5, -0.7], [0.3, 0.0, 0.6]])
W2 = np.array([0.3, -0.7])
STRUCT_VECTOR = {
    "rev": lambda a, z, p: (a * ONES3)[..., ::-1],
    "perm": lambda a, z, p: (a * ONES3)[..., [2, 0, 1]],
    "matc": lambda a, z, p: (a * ONES3 + z) @ C33,
    # matrices built from parameters, by stacking rows or by reshaping a vector
    "matp_stack": lambda a, z, p: (a * ONES3 + z) @ np.stack([p[3:6], np.sin(p[0:3]), p[0:3] * p[3:6]]),
    "matp_reshape": lambda a, z, p: (a * ONES3 + z) @ np.reshape(
        np.concatenate([p[3:6], np.sin(p[0:3]), p[0:3] * p[3:6]]), (3, 3)),
    "matvec": lambda a, z, p: np.reshape((a * ONES3 + z) @ p[3:6], (-1, 1)),
    # sparse and structured ops: a constant sparse matrix, per-element polynomials at gathered
    # points, products over index groups, concatenation of pieces
    "spmv": lambda a, z, p: tape.spmv(SP33, a * ONES3 + z),
    "polyval_at": lambda a, z, p: tape.polyval(PV3, np.tanh(a * ONES3 + z), at=[2, 0, 0]),
    "scatter_prod": lambda a, z, p: tape.scatter_prod(1.0 + 0.5 * np.tanh(a * ONES3 + z),
                                                      [0, 2, 0], (3,)),
    "concat": lambda a, z, p: np.concatenate([(a * ONES3 + z)[..., 1:], np.sin(a * ONES3 + z)[..., :1]],
                                             axis=-1),
}
STRUCT_SCALAR = {
    "column": lambda a, z, p: ((a + z)[:, None] * np.array([1.0, -2.0, 0.5]))[:, 1],
}
STRUCT2_VECTOR = {
    "mix": lambda a, b, z: np.sum(np.stack([a * ONES3 + z, b * ONES3 + z], axis=-1) * W2, axis=-1),
}
STRUCT2_SCALAR = {
    "mix": lambda a, b, z: np.sum(np.stack([a + z, b + z], axis=-1) * W2, axis=-1),
}

# Closer to a kink than this, rounding may decide the branch.
NEAR_TIE = 1e-8
CONSTS = [-1.5, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0]

SCALAR_LEAVES = ["p0", "p1", "p2", "x", "y"]
VECTOR_LEAVES = ["p0", "p1", "p2", "pv", "X", "Y", "c3"]
EVENT_LEAVES = {"x", "y", "X", "Y"}


def trees(leaves, depth, vector, elementwise_only=False):
    leaf = st.sampled_from(leaves) | st.sampled_from(CONSTS).map(lambda c: ("const", c))
    if depth == 0:
        return leaf
    sub = trees(leaves, depth - 1, vector, elementwise_only)
    struct = STRUCT_VECTOR if vector else STRUCT_SCALAR
    struct2 = STRUCT2_VECTOR if vector else STRUCT2_SCALAR
    branches = [
        leaf,
        st.tuples(st.just("un"), st.sampled_from(sorted(UNARY)), sub),
        st.tuples(st.just("bin"), st.sampled_from(sorted(BINARY)), sub, sub),
        st.tuples(st.just("where"), sub, sub, sub, sub),
    ]
    if elementwise_only:
        return st.one_of(*branches)
    branches += [
        # reductions over events inside the tree: a multi-pass tape
        st.tuples(st.just("center"), sub),
        st.tuples(st.just("lse_events"), sub),
        st.tuples(st.just("st"), st.sampled_from(sorted(struct)), sub),
        st.tuples(st.just("st2"), st.sampled_from(sorted(struct2)), sub, sub),
    ]
    if vector:
        branches.append(st.tuples(st.just("row"), st.sampled_from(sorted(ROW)), sub))
    return st.one_of(*branches)


def leaves_of(t):
    if isinstance(t, str):
        return {t}
    if t[0] == "const":
        return set()
    return set().union(*(leaves_of(c) for c in t[1:] if not isinstance(c, str) or c in
                         SCALAR_LEAVES + VECTOR_LEAVES))


@st.composite
def problems(draw, extended=False):
    vector = draw(st.booleans())
    leaves = VECTOR_LEAVES if vector else SCALAR_LEAVES
    body = draw(trees(leaves, 4, vector))
    if not leaves_of(body) & EVENT_LEAVES:
        body = ("bin", "mul", body, "X" if vector else "x")
    param_leaves = [lf for lf in leaves if lf not in EVENT_LEAVES and lf != "c3"]
    extra = draw(st.none() | trees(param_leaves, 2, vector))
    if extended:
        # a parameter-only term that stacks two scalar expressions
        scalar_tree = trees(["p0", "p1", "p2"], 2, False, elementwise_only=True)
        extra = ("pstack", draw(scalar_tree), draw(scalar_tree))
    n = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    p = np.array(draw(st.lists(st.floats(-1.5, 1.5, allow_nan=False), min_size=N_PARAMS,
                               max_size=N_PARAMS)))
    return vector, body, extra, n, seed, p


def make_data(vector, n, seed):
    rng = np.random.default_rng(seed)
    return {"x": rng.uniform(-2, 2, n), "y": rng.uniform(-2, 2, n),
            "X": rng.uniform(-2, 2, (n, 3)), "Y": rng.uniform(-2, 2, (n, 3))}


# ---------------------------------------------------------------------------------------------
class Tracker:
    """Records, during a numpy evaluation, the magnitude of every intermediate value (summed over
    the broadcast event shape) and the distance of every kink argument from its kink."""

    def __init__(self, shape):
        self.shape = shape
        self.magnitude = 0.0
        self.gap = np.inf

    def value(self, v):
        self.magnitude += float(np.sum(np.abs(np.broadcast_to(v, self.shape))))
        return v

    def kink(self, d):
        self.gap = min(self.gap, float(np.min(np.abs(d))))


def evaluate(t, env, tr=None):
    ev = lambda c: evaluate(c, env, tr)   # noqa: E731
    if isinstance(t, str):
        v = env[t]
    elif t[0] == "const":
        v = t[1]
    elif t[0] == "un":
        a = ev(t[2])
        if tr is not None and t[1] == "abs":
            tr.kink(a)
        v = UNARY[t[1]](a)
    elif t[0] == "bin":
        a, b = ev(t[2]), ev(t[3])
        if tr is not None and t[1] in ("maximum", "minimum"):
            tr.kink(a - b)
        v = BINARY[t[1]](a, b)
    elif t[0] == "where":
        a, b, c, d = ev(t[1]), ev(t[2]), ev(t[3]), ev(t[4])
        if tr is not None:
            tr.kink(a - b)
        v = np.where(a > b, c, d)
    elif t[0] == "row":
        a = ev(t[2])
        if tr is not None and t[1] == "rowmax":
            s = np.sort(np.broadcast_to(a, tr.shape[:-1] + (3,)), axis=-1)
            tr.kink(s[..., -1] - s[..., -2])
        v = ROW[t[1]](a)
    elif t[0] == "st":
        v = (STRUCT_VECTOR if env["vector"] else STRUCT_SCALAR)[t[1]](ev(t[2]), env["zero"], env["p"])
    elif t[0] == "st2":
        f = (STRUCT2_VECTOR if env["vector"] else STRUCT2_SCALAR)[t[1]]
        v = f(ev(t[2]), ev(t[3]), env["zero"])
    elif t[0] == "pstack":
        v = np.sum(np.stack([ev(t[1]), ev(t[2])]) * W2)
    elif t[0] == "center":
        # make it an event array first (x * 0 is not folded), then subtract its mean over events
        a = ev(t[1]) + env["zero"]
        v = a - np.mean(a, axis=0)
    elif t[0] == "lse_events":
        a = ev(t[1]) + env["zero"]
        v = np.tanh(tape.logsumexp(a, axis=0))
    else:
        raise ValueError(t)
    return tr.value(v) if tr is not None else v


def build(vector, body, extra):
    def fn(p, x, y, X, Y, tr=None):
        env = {"p0": p[0], "p1": p[1], "p2": p[2], "pv": p[3:6], "x": x, "y": y, "X": X, "Y": Y,
               "c3": np.array([0.5, -1.0, 1.5]), "zero": (X if vector else x) * 0.0,
               "vector": vector, "p": p}
        out = np.sum(evaluate(body, env, tr))
        if extra is not None:
            out = out + np.sum(evaluate(extra, env, tr))
        return out
    return fn


def reference(vector, body, extra, p, data):
    """(value, magnitude, kink gap) of the numpy evaluation."""
    n = data["x"].shape[0]
    tr = Tracker((n, 3) if vector else (n,))
    with np.errstate(under="ignore"):
        value = float(build(vector, body, extra)(p, tr=tr, **data))
    return value, tr.magnitude, tr.gap


def prepare(problem, chunk_size=None):
    vector, body, extra, n, seed, p = problem
    data = make_data(vector, n, seed)
    value, magnitude, gap = reference(vector, body, extra, p, data)
    # stay in a range where the finite differences are meaningful
    assume(np.isfinite(value) and magnitude < 1e6)
    f = tape.record(build(vector, body, extra), p, data=data, chunk_size=chunk_size)
    return f, data, value, magnitude, gap


# ---------------------------------------------------------------------------------------------
@settings(**SETTINGS)
@given(problems())
def test_value_matches_numpy(problem):
    f, data, value, magnitude, gap = prepare(problem)
    p = problem[-1]
    # no branch decided by rounding (where(a > b) with a - b at the rounding level)
    assume(gap > NEAR_TIE)
    got = f(p)
    assert got == pytest.approx(value, rel=1e-12, abs=1e-13 * magnitude + 1e-300)
    v2, _ = f.value_and_grad(p)
    assert v2 == pytest.approx(value, rel=1e-12, abs=1e-13 * magnitude + 1e-300)


@settings(**SETTINGS)
@given(problems())
def test_gradient_matches_finite_differences(problem):
    f, data, value, magnitude, gap = prepare(problem)
    p = problem[-1]
    # a kink closer than a few finite-difference steps would make the comparison meaningless
    assume(gap > 1e-3)
    g = f.grad(p)
    num = tape.numerical_grad(f, p)
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-7 * max(1.0, magnitude))


@settings(**SETTINGS)
@given(problems())
def test_hessian_matches_finite_differences_of_the_gradient(problem):
    """Forward-over-reverse Hessians of random graphs: symmetric, equal to differences of the
    exact gradient, and hvp(p, v) == H @ v."""
    f, data, value, magnitude, gap = prepare(problem)
    p = problem[-1]
    assume(gap > 1e-3)
    h = f.hessian(p)
    assert h.shape == (p.size, p.size)
    np.testing.assert_array_equal(h, h.T)
    num = np.array([tape.numerical_grad(lambda q, i=i: f.grad(q)[i], p) for i in range(p.size)])
    scale = max(1.0, magnitude)
    np.testing.assert_allclose(h, 0.5 * (num + num.T), rtol=1e-4, atol=1e-6 * scale)
    v = np.linspace(-1.0, 1.0, p.size)
    np.testing.assert_allclose(f.hvp(p, v), h @ v, rtol=1e-9, atol=1e-10 * scale * p.size)
    # value, gradient and Hessian from the Hessian's one pass: the separate calls' numbers
    v3, g3, h3 = f.value_grad_hessian(p)
    assert v3 == pytest.approx(f(p), rel=1e-12, abs=1e-13 * magnitude + 1e-300)
    g = f.grad(p)
    np.testing.assert_allclose(g3, g, rtol=1e-12, atol=1e-12 * (np.abs(g).max() + scale))
    np.testing.assert_array_equal(h3, h)


@settings(**SETTINGS)
@given(problems(), st.lists(st.floats(-1, 1, allow_nan=False), min_size=N_PARAMS,
                            max_size=N_PARAMS))
def test_jvp_equals_grad_dot_direction(problem, v):
    f, data, value, magnitude, gap = prepare(problem)
    p = problem[-1]
    # at a tie (a == b in maximum / where) the one-sided rules may legitimately differ
    assume(gap > NEAR_TIE)
    v = np.array(v)
    g = f.grad(p)
    d = f.jvp(p, v)
    # both are exact up to rounding, which is relative to the per-event terms (they may cancel)
    tol = 1e-10 * float(np.abs(g) @ np.abs(v)) + 1e-12 * magnitude * float(np.sum(np.abs(v)))
    assert d == pytest.approx(g @ v, rel=1e-10, abs=tol + 1e-300)


@settings(**SETTINGS)
@given(problems())
def test_chunking_changes_only_rounding(problem):
    f, data, value, magnitude, gap = prepare(problem, chunk_size=None)
    assume(gap > NEAR_TIE)
    g = tape.record(f_fn(problem), problem[-1], data=data, chunk_size=7)
    p = problem[-1]
    assert g(p) == pytest.approx(f(p), rel=1e-13, abs=1e-14 * magnitude + 1e-300)
    (v1, g1), (v2, g2) = f.value_and_grad(p), g.value_and_grad(p)
    assert v2 == pytest.approx(v1, rel=1e-13, abs=1e-14 * magnitude + 1e-300)
    np.testing.assert_allclose(g2, g1, rtol=1e-11, atol=1e-12 * max(1.0, magnitude))


def f_fn(problem):
    vector, body, extra, *_ = problem
    return build(vector, body, extra)


@settings(**SETTINGS, derandomize=True, phases=[Phase.explicit, Phase.generate])
@given(problems(extended=True))
def test_extended_graphs_value_and_gradient(problem):
    """Value and gradient with a parameter-only term that stacks two scalar expressions."""
    f, data, value, magnitude, gap = prepare(problem)
    p = problem[-1]
    assume(gap > 1e-3)
    assert f(p) == pytest.approx(value, rel=1e-12, abs=1e-13 * magnitude + 1e-300)
    np.testing.assert_allclose(f.grad(p), tape.numerical_grad(f, p), rtol=1e-5,
                               atol=1e-7 * max(1.0, magnitude))
