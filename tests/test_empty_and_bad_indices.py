"""Empty operands and bad indices of the structural and sparse ops: right values, clear errors,
never a read or write outside a buffer (these once did)."""
import numpy as np
import pytest
import scipy.sparse as sp

import tape


def test_concat_with_an_empty_piece():
    p = np.array([1.0, 2.0, 3.0])
    f = tape.record(lambda p: np.sum(np.concatenate([p[:0], p[0:2]]) * np.array([1.0, 2.0])), p)
    assert f(p) == 5.0
    x = np.random.default_rng(0).normal(size=(10, 3))

    def fn(p, X):
        z = np.concatenate([X[:, 0:1] * p[0], X[:, :0] * p[2], X[:, 1:] * p[1]], axis=1)
        return np.sum(z * np.array([1.0, 2.0, 3.0]))

    g = tape.record(fn, p, data={"X": x}, chunk_size=3)
    assert g(p) == pytest.approx(fn(p, x), rel=1e-14)


def test_empty_spmv_scatter_prod_and_polyval():
    p = np.arange(1.0, 4.0)

    def fn(p):
        z = tape.spmv(sp.csr_array((0, 3)), p * 2.0)                       # no rows
        q = tape.scatter_prod(p[:0] * 2.0, [], (2,))                        # nothing multiplied
        c = tape.polyval(np.ones((3, 0)), p, at=[])                         # no polynomials
        return np.sum(z) + np.sum(q) * p[0] + np.sum(c)

    f = tape.record(fn, p)
    assert f(p) == 2.0
    np.testing.assert_allclose(f.grad(p), [2.0, 0.0, 0.0])


@pytest.mark.parametrize("build", [
    lambda p: tape.scatter_prod(p * 1.0, [-1, 0, 0], (2,)),
    lambda p: tape.math.scatter_add(p * 1.0, [-1, 0, 0], (2,)),
    lambda p: tape.math.gather(p * 1.0, [0, -1], (2,)),
    lambda p: tape.polyval(np.ones((2, 2)), p, at=[0, -1]),
])
def test_negative_indices_are_refused(build):
    with pytest.raises(tape.ShapeError):
        tape.record(lambda p: np.sum(build(p)), np.ones(3))


def test_indices_of_numpy_integers_are_saved(tmp_path):
    f = tape.record(lambda p: np.sum(tape.polyval(np.ones((2, 2)), p, at=(0, np.int64(2)))),
                    np.ones(3))
    tape.save(f, tmp_path / "t.tape")
    assert tape.load(tmp_path / "t.tape")(np.ones(3)) == f(np.ones(3))


def test_memory_limit_counts_the_arena_padding():
    from tape import _replay
    from tape.function import chunk_rows_for
    rows = chunk_rows_for(10, memory_limit=100_000)
    assert 8 * 10 * (rows + _replay.ARENA_ROW_PAD) + 64 <= 100_000
    with pytest.raises(ValueError, match="smaller than the buffers of one event"):
        chunk_rows_for(10, memory_limit=8 * 10 * 2)
