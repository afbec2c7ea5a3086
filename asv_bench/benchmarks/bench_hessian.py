"""Exact Hessians and bounded memory (the Hessian/checkpointing issue).

Targets, tutorial model (7 parameters), single thread, one run:

* ``track_hessian_over_value_and_grad`` at N = 1e6: <= 4 (about 10x a value);
* ``peakmem_value_and_grad`` / ``peakmem_hessian`` at N = 1e7 with ``memory_limit="64MB"``:
  peak RSS <= the data arrays (80 MB) + 100 MB (``track_peak_mb_over_data`` reports the excess);
* ``track_chunked_over_unchunked``: value_and_grad with ``memory_limit="64MB"`` no more than
  10 % slower than with one chunk spanning all events.
"""
import time

import numpy as np

import tape
from models import tutorial

from .bench_tape import median_seconds

tape.set_num_threads(1)
_STATE = {}
P = tutorial.TRUTH * 1.01


def _events(n, seed=0):
    """n tutorial events, generated in slices so that no temporary of size n is made."""
    out = np.empty(n)
    rng = np.random.default_rng(seed)
    step = 1_000_000
    for i in range(0, n, step):
        out[i:i + step] = tutorial.sample(min(step, n - i), rng)
    return out


def _function(n, **kw):
    key = (n, tuple(sorted(kw.items())))
    if key not in _STATE:
        x = _STATE.setdefault(("x", n), _events(n))
        _STATE[key] = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x}, **kw)
    return _STATE[key]


class Hessian:
    """Exact 7x7 Hessian of the tutorial NLL by forward-over-reverse; target <= 4x value_and_grad."""

    params = [10**5, 10**6]
    param_names = ["n_events"]
    timeout = 300

    def setup(self, n):
        self.f = _function(n)
        self.f.hessian(P)
        self.f.value_and_grad(P)
        self.f.value_grad_hessian(P)

    def time_hessian(self, n):
        self.f.hessian(P)

    def time_hvp(self, n):
        self.f.hvp(P, np.ones(7))

    def time_value_and_grad(self, n):
        self.f.value_and_grad(P)

    def time_value_grad_hessian(self, n):
        self.f.value_grad_hessian(P)

    def track_value_grad_hessian_over_value_and_grad(self, n):
        """Value, gradient and Hessian from one pass, in gradients (a Newton step on few
        parameters; the value and gradient add about 6 % to the Hessian's pass)."""
        tf, tg = median_seconds(lambda: self.f.value_grad_hessian(P),
                                lambda: self.f.value_and_grad(P), repeat=7)
        return tf / tg

    track_value_grad_hessian_over_value_and_grad.unit = "ratio"

    def track_hessian_over_value_and_grad(self, n):
        th, tg = median_seconds(lambda: self.f.hessian(P), lambda: self.f.value_and_grad(P),
                                repeat=7)
        return th / tg

    track_hessian_over_value_and_grad.unit = "ratio"

    def track_hessian_over_value(self, n):
        th, tv = median_seconds(lambda: self.f.hessian(P), lambda: self.f(P), repeat=7)
        return th / tv

    track_hessian_over_value.unit = "ratio"


_MEASURE = r"""
import os, resource, sys
import numpy as np
import tape
from models import tutorial
tape.set_num_threads(1)
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
x = np.load(sys.argv[1])
before = rss()
f = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x}, memory_limit="64MB")
p = tutorial.TRUTH * 1.01
f.value_and_grad(p)
f.hessian(p)
f(p)
print(before, peak(), x.nbytes / 2**20)
"""


def _events_file(n):
    """Path of a .npy file of n tutorial events (asv's setup_cache: made once per run)."""
    import os
    import tempfile
    path = os.path.join(tempfile.mkdtemp(prefix="tapefit-bench-"), f"x{n}.npy")
    np.save(path, _events(n))
    return path


class BoundedMemory:
    """10^7 events with memory_limit="64MB": peak RSS within data + 100 MB; chunking costs <= 10 %.

    ``track_peak_mb_over_data`` runs value, gradient and Hessian in a fresh process on events
    loaded from disk (no generation temporaries) and reports its peak RSS minus the resident
    size it had with the interpreter, the libraries and the data loaded: the memory the tape
    itself needs (Linux: reads /proc/self/statm).
    """

    timeout = 600

    def setup_cache(self):
        return _events_file(10**7)

    def setup(self, path):
        key = ("mem", path)
        if key not in _STATE:
            _STATE[key] = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": np.load(path)},
                                      memory_limit="64MB")
        self.f = _STATE[key]
        self.f.value_and_grad(P)

    def peakmem_value_and_grad(self, path):
        self.f.value_and_grad(P)

    def peakmem_hessian(self, path):
        self.f.hessian(P)

    def track_peak_mb_over_data(self, path):
        import subprocess
        import sys
        out = subprocess.run([sys.executable, "-c", _MEASURE, path], capture_output=True,
                             text=True, check=True).stdout.split()
        before, after, data_mb = (float(v) for v in out)
        return after - before

    track_peak_mb_over_data.unit = "MB"

    def track_chunked_over_unchunked(self, path):
        key = ("whole", path)
        if key not in _STATE:
            _STATE[key] = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": self.f.data["x"]},
                                      chunk_size=10**7)
        whole = _STATE[key]
        whole.value_and_grad(P)
        tc, tw = median_seconds(lambda: self.f.value_and_grad(P), lambda: whole.value_and_grad(P),
                                repeat=5)
        return tc / tw

    track_chunked_over_unchunked.unit = "ratio"


class Threads:
    """value_and_grad at N = 1e7 on one and on two threads; target: two >= 1.7x faster."""

    timeout = 600

    def setup_cache(self):
        return _events_file(10**7)

    def setup(self, path):
        key = ("threads", path)
        if key not in _STATE:
            _STATE[key] = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": np.load(path)})
        self.f = _STATE[key]

    def teardown(self, path):
        tape.set_num_threads(1)

    def track_two_threads_speedup(self, path):
        def one():
            tape.set_num_threads(1)
            self.f.value_and_grad(P)

        def two():
            tape.set_num_threads(2)
            self.f.value_and_grad(P)

        t1, t2 = median_seconds(one, two, repeat=7)
        return t1 / t2

    track_two_threads_speedup.unit = "ratio"


class TinyHessian:
    """Hessians of a tiny-op tape (binned regime) as n grows: softplus(A @ p + c) + |p|^2 / 2,
    by block programs and by a loop of hvp columns (the default for more than 16 parameters on
    few events): per-call time, and the first call including building the programs."""

    params = ([25, 50, 100, 200], ["blocks", "hvp"])
    param_names = ["n_params", "method"]
    timeout = 300

    @staticmethod
    def _record(n):
        rng = np.random.default_rng(n)
        a, c = rng.normal(size=(n, n)) / n, rng.normal(size=n)
        f = tape.record(lambda q: np.sum(tape.softplus(a @ q + c)) + 0.5 * np.sum(q * q),
                        rng.normal(size=n) * 0.1)
        return f, rng.normal(size=n) * 0.1

    def setup(self, n, method):
        key = ("tiny", n)
        if key not in _STATE:
            _STATE[key] = self._record(n)
        self.f, self.q = _STATE[key]
        self.f.hessian(self.q, method=method)
        self.f.value_and_grad(self.q)

    def time_hessian(self, n, method):
        self.f.hessian(self.q, method=method)

    def track_hessian_over_value_and_grad(self, n, method):
        th, tg = median_seconds(lambda: self.f.hessian(self.q, method=method),
                                lambda: self.f.value_and_grad(self.q), repeat=7)
        return th / tg

    track_hessian_over_value_and_grad.unit = "ratio"

    def track_first_hessian_seconds(self, n, method):
        f, q = self._record(n)
        f.value_and_grad(q)
        t0 = time.perf_counter()
        f.hessian(q, method=method)
        return time.perf_counter() - t0

    track_first_hessian_seconds.unit = "seconds"


class Persistence:
    """tape.load of the tutorial tape (10^4 events, with its data); target <= 10 ms."""

    def setup(self):
        import os
        import tempfile
        f = _function(10**4)
        f.value_and_grad(P)
        self.path = os.path.join(tempfile.mkdtemp(prefix="tapefit-bench-"), "t.tape")
        tape.save(f, self.path)

    def time_load(self):
        tape.load(self.path)

    def time_load_and_first_value(self):
        tape.load(self.path)(P)
