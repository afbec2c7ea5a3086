"""Structural Hessian patterns and sparse Hessians (tape.sparsity): the pattern holds every
non-zero of the exact Hessian (random graphs, published likelihoods), the column groups never
mix two non-zeros of one row, and the sparse Hessian equals the dense one."""
import json
import os
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tape
from tape import sparsity
from tape.sparsity import SparseHessian, column_groups, hessian_pattern

from test_random_graphs import SETTINGS, prepare, problems

# (as in test_random_graphs: hypothesis' failure report imports libcst, which warns)
pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "histfactory")


def _load(name):
    with open(os.path.join(SHARED, name)) as fh:
        return json.load(fh)


def _whole_pattern():
    """The analysis without its early stop on dense patterns (6 parameters fill up fast)."""
    return mock.patch.multiple(sparsity, MAX_DENSITY=1.0, MAX_WORK=10**9)


@settings(**SETTINGS)
@given(problems(extended=True))
def test_pattern_holds_every_nonzero_of_random_graphs(problem):
    """At the drawn point, every non-zero of the exact (forward-over-reverse) Hessian is in the
    pattern read off the tape, whatever ops the graph uses."""
    f, data, value, magnitude, gap = prepare(problem)
    p = problem[-1]
    with _whole_pattern():
        pattern = hessian_pattern(f._graph, f._out, p.size)
    assert pattern is not None
    h = f.hessian(p, method="blocks")
    assert not np.any((h != 0) & ~pattern)


@settings(**SETTINGS)
@given(problems(extended=True))
def test_sparse_hessian_equals_dense_on_random_graphs(problem):
    f, data, value, magnitude, gap = prepare(problem)
    p = problem[-1]
    dense = f.hessian(p, method="hvp")
    with _whole_pattern():
        sparse = f.hessian(p, method="sparse")
    np.testing.assert_allclose(sparse, dense, rtol=1e-12, atol=1e-14 * max(1.0, magnitude))


def _check_groups(pattern, direct, groups):
    n = pattern.shape[0]
    seen = sorted(list(direct) + [j for g in groups for j in g])
    assert seen == list(range(n))                       # every column exactly once
    rows = np.ones(n, dtype=bool)
    rows[list(direct)] = False
    for g in groups:
        # no row outside the direct ones has a non-zero in two columns of a group
        assert pattern[np.ix_(rows, g)].sum(axis=1).max(initial=0) <= 1


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.floats(0.0, 0.6), st.integers(0, 3), st.integers(0, 2**32 - 1))
def test_column_groups_are_valid(n, density, dense_rows, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(size=(n, n)) < density
    a[: min(dense_rows, n), :] = True                   # parameters that touch everything
    pattern = a | a.T
    direct, groups = column_groups(pattern)
    _check_groups(pattern, direct, groups)
    assert len(direct) + len(groups) <= n


def test_a_chain_needs_three_products_whatever_its_length():
    """sum (p_i - p_{i+1})^2 has a tridiagonal Hessian: three groups recover all of it."""
    n = 40

    def fn(p):
        return np.sum((p[1:] - p[:-1]) ** 2) + np.sum(np.exp(p * 0.1))

    f = tape.record(fn, np.zeros(n))
    pattern = hessian_pattern(f._graph, f._out, n)
    band = np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= 1
    np.testing.assert_array_equal(pattern, band)
    plan = f._sparse_plan()
    assert plan.products == 3
    p = np.linspace(-1, 1, n)
    h = f.hessian(p)                                   # the default picks "sparse" here
    np.testing.assert_allclose(h, f.hessian(p, method="hvp"), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(np.diag(h)[1:-1], 4.0 + 0.01 * np.exp(0.1 * p[1:-1]), rtol=1e-13)


def test_a_dense_tape_gives_up_early():
    """Many ops that all depend on every parameter: the analysis stops once the pattern is
    nearly full (it once kept an n x n product per op: 27 s and 5 GB at n = 600)."""
    n = 200

    def fn(p):
        s = np.sum(p)
        acc = 0.0
        for k in range(400):
            acc = acc + np.exp(s * 1e-3 * k) * p[k % n]
        return acc

    f = tape.record(fn, np.zeros(n))
    # (without the early stop the result would be the full pattern, not None)
    assert hessian_pattern(f._graph, f._out, n) is None


def test_an_unknown_pattern_falls_back_to_dense(monkeypatch):
    """Too large to analyse (or an op without a rule): the default takes the dense loop, and
    asking for "sparse" says why it cannot."""
    monkeypatch.setattr(sparsity, "MAX_ENTRIES", 0)
    n = 20
    f = tape.record(lambda p: np.sum(p[1:] * p[:-1]), np.ones(n))
    assert hessian_pattern(f._graph, f._out, n) is None
    p = np.linspace(0, 1, n)
    np.testing.assert_allclose(f.hessian(p), f.hessian(p, method="blocks"), rtol=1e-14)
    with pytest.raises(ValueError, match="pattern cannot be read"):
        f.hessian(p, method="sparse")


WORKSPACES = [("atlas_susy_2018_06_3LeRJR_BkgOnly.json",
               "atlas_susy_2018_06_3LeRJR_patch.ERJR_350p0_150p0.json"),
              ("atlas_susy_2019_08_1Lbb_BkgOnly.json",
               "atlas_susy_2019_08_1Lbb_patch_C1N2_Wh_hbb_550_200.json"),
              ("atlas_3Lresonance_BkgOnly.json", None)]


@pytest.mark.parametrize("name, patch", WORKSPACES)
def test_published_likelihoods(name, patch, monkeypatch):
    """The pattern holds every non-zero of the exact Hessian at the start and at random points
    within the bounds; the Hessian the fits use (sparse where it pays) equals the dense one."""
    if not os.path.exists(os.path.join(SHARED, name)):
        pytest.skip("../shared/data/histfactory is not beside the repository")
    from models.histfactory import Workspace
    ws = Workspace(_load(name))
    model = ws.model(patches=[_load(patch)]) if patch else ws.model(poi_name=None)
    f = model.nll(ws.data(model)).function
    n = f.n_params
    if name.startswith("atlas_susy_2019_08_1Lbb"):
        # 94 % dense: the analysis gives up (no products to save) and the loop stays dense
        assert hessian_pattern(f._graph, f._out, n) is None
        assert f._sparse_plan() is None
    monkeypatch.setattr(sparsity, "MAX_DENSITY", 1.0)   # the whole pattern, to check it
    pattern = hessian_pattern(f._graph, f._out, n)
    bounds = np.array(model.config.suggested_bounds(), dtype=float)
    rng = np.random.default_rng(1)
    points = [np.array(model.config.suggested_init(), dtype=float)]
    points += [bounds[:, 0] + (bounds[:, 1] - bounds[:, 0]) * rng.uniform(0.2, 0.8, n)
               for _ in range(2)]
    for p in points:
        dense = f.hessian(p, method="hvp")
        assert not np.any((dense != 0) & ~pattern)
        np.testing.assert_allclose(f.hessian(p), dense, rtol=1e-12,
                                   atol=1e-14 * np.abs(dense).max())
    plan = SparseHessian.of(f._graph, f._out, n)
    _check_groups(pattern, plan.direct, plan.groups)
    monkeypatch.undo()
    if name.startswith("atlas_3Lresonance"):
        assert plan.products <= n // 4                 # 124 of 623 products
