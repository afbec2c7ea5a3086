"""How many threads replay the chunks of a body pass.

Chunks are independent: each thread replays whole chunks with its own buffers, and the partial
sums of all chunks are combined in chunk order, so results do not depend on the thread count.
The default is every core; ``TAPEFIT_NUM_THREADS`` in the environment overrides it at import.
"""
import os

from . import _replay

__all__ = ["set_num_threads", "get_num_threads"]

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
