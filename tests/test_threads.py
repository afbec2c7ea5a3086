"""All cores: chunks replayed in parallel give the results of one thread, bit for bit."""
import numpy as np
import pytest

import tape
from models import tutorial


@pytest.fixture
def restore_threads():
    from tape import _replay
    n = tape.get_num_threads()
    _replay.set_min_parallel_events(0)      # small test tapes take the parallel path too
    yield
    tape.set_num_threads(n)
    _replay.set_min_parallel_events(65536)


@pytest.mark.parametrize("chunk", [1, 333, 4096])
def test_thread_count_does_not_change_results(restore_threads, chunk):
    x = tutorial.sample(20_000, np.random.default_rng(9))
    f = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x}, chunk_size=chunk)
    p = tutorial.TRUTH * 0.97
    results = []
    for n in (1, 2, 3, 8):
        tape.set_num_threads(n)
        results.append((f(p), f.value_and_grad(p)[1], f.hessian(p)))
    for r in results[1:]:
        assert r[0] == results[0][0]
        assert np.array_equal(r[1], results[0][1])
        assert np.array_equal(r[2], results[0][2])


def test_bad_thread_counts(restore_threads):
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            tape.set_num_threads(bad)


def test_environment_variable_sets_the_default(tmp_path):
    import subprocess
    import sys
    code = "import tape; print(tape.get_num_threads())"
    env = dict(__import__("os").environ, TAPEFIT_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "3"
    env["TAPEFIT_NUM_THREADS"] = "many"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "TAPEFIT_NUM_THREADS" in bad.stderr


def test_nested_blas_limits_keep_the_outer_one():
    """A toy study or scan holds one BLAS limit for all its fits: an inner fit's limit neither
    enters threadpoolctl again nor lifts the outer one when it ends."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from tape.threads import _blas_limit

    def blas_threads():
        info = [d["num_threads"] for d in threadpoolctl.threadpool_info()
                if d["user_api"] == "blas"]
        return info

    before = blas_threads()
    if not before:
        pytest.skip("no BLAS library loaded")
    with _blas_limit():
        assert all(n == 1 for n in blas_threads())
        with _blas_limit():
            assert all(n == 1 for n in blas_threads())
        assert all(n == 1 for n in blas_threads())
    assert blas_threads() == before
