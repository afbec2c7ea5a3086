"""How many threads replay the chunks of a body pass, and BLAS threads during fits.

Chunks are independent: each thread replays whole chunks with its own buffers, and the partial
sums of all chunks are combined in chunk order, so results do not depend on the thread count.
The default is every core; ``TAPEFIT_NUM_THREADS`` in the environment overrides it at import.

Fits do their linear algebra (eigen-decompositions, inverses of n x n Hessians, n up to a few
thousand) with BLAS on one thread (``single_threaded_blas``): at these sizes threading gains
little, and on a machine whose other cores are busy OpenBLAS's waiting threads made a
600 x 600 ``eigvalsh`` take 0.3 to 1 s instead of 17 ms.
"""
import contextlib
import functools
import os
import threading

from . import _replay

__all__ = ["set_num_threads", "get_num_threads", "single_threaded_blas"]

ENV = "TAPEFIT_NUM_THREADS"


def set_num_threads(n):
    """Replay chunks on `n` threads (1 = serial).

    >>> import tape
    >>> tape.set_num_threads(1); tape.get_num_threads()
    1
    """
    if isinstance(n, bool) or int(n) != n:
        raise ValueError(f"the number of threads must be a positive integer, got {n!r}")
    _replay.set_num_threads(int(n))


def get_num_threads():
    """The number of threads chunk replay uses."""
    return _replay.get_num_threads()


_CONTROLLER = []
_DEPTH = threading.local()


@contextlib.contextmanager
def _blas_limit():
    # nested limits (a toy study's fits, a scan's points) take the outermost one's: entering
    # threadpoolctl's limit costs about 0.1 ms, a tenth of a small fit's own Python
    depth = getattr(_DEPTH, "n", 0)
    if depth:
        _DEPTH.n = depth + 1
        try:
            yield
        finally:
            _DEPTH.n = depth
        return
    _DEPTH.n = 1
    try:
        with _blas_limit_outer():
            yield
    finally:
        _DEPTH.n = 0


@contextlib.contextmanager
def _blas_limit_outer():
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
            _CONTROLLER.append(ThreadpoolController())
        except ImportError:        # optional: without it BLAS keeps its own thread count
            _CONTROLLER.append(None)
    if _CONTROLLER[0] is None:
        yield
        return
    with _CONTROLLER[0].limit(limits=1, user_api="blas"):
        yield


def single_threaded_blas(fn):
    """Decorator: run `fn` with the BLAS libraries loaded in the process on one thread.

    >>> import numpy as np, tape
    >>> tape.threads.single_threaded_blas(np.linalg.eigvalsh)(np.eye(2))
    array([1., 1.])
    """
    @functools.wraps(fn)
    def run(*args, **kwargs):
        with _blas_limit():
            return fn(*args, **kwargs)
    return run


def _default():
    env = os.environ.get(ENV)
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"{ENV}={env!r} is not a positive integer") from None
        if n < 1:
            raise ValueError(f"{ENV}={env!r} is not a positive integer")
        return n
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


set_num_threads(_default())
