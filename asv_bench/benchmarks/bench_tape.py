"""asv benchmarks of the tape engine: replay speed against plain numpy, gradient cost, lowering cost,
per-call overhead and per-instruction dispatch cost.

Run from the repository root::

    asv machine --yes
    asv run --python=same --quick --show-stderr

(asv.conf.json is at the repository root: ``asv run --python=same --quick`` from there).

Targets (stated again in each class docstring):

* tutorial model, N = 1e6 events: value replay <= 0.25x the plain numpy NLL;
* value_and_grad <= 2.5x value;
* recording plus lowering (``tape.record`` + first value call) <= 20 ms;
* one value call at N = 2000 events <= 15 us;
* tiny-op tape (10-element arrays): <= 50 ns per instruction for the value, <= 150 ns for
  value_and_grad (divided by the number of *value-program* instructions).

The ``track_*`` ratios are measured inside the benchmark with ``time.perf_counter``: the two
callables are timed alternately (several repetitions, each sample long enough to be above timer
resolution) and the ratio of the medians is returned, so both sides see the same machine state.

With ``--quick`` every ``time_*`` figure is one single call: use it to check that the benchmarks
run, and a full ``asv run`` (or the ``track_*`` medians) for figures to compare with the targets.
"""
import math
import time

import numpy as np

import tape
from models import tutorial

# The targets are single-thread figures (bench_scaling.py measures the threaded replay).
tape.set_num_threads(1)

# --------------------------------------------------------------------------------------------------
# helpers


def _calibrate(fn, min_sample):
    """Calls per sample so that one sample lasts at least `min_sample` seconds."""
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    return max(1, int(math.ceil(min_sample / max(dt, 1e-9))))


def _sample(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def median_seconds(*fns, repeat=15, min_sample=5e-3):
    """Median seconds per call of each callable in `fns`, timed alternately (interleaved samples)."""
    numbers = [_calibrate(fn, min_sample) for fn in fns]
    samples = [[] for _ in fns]
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            samples[k].append(_sample(fn, numbers[k]))
    return [float(np.median(s)) for s in samples]


def n_instructions(f, kind):
    """Instructions one call of program `kind` runs: prelude + all body passes + all post blocks.

    A body pass runs once per chunk of events; with no data (or a single chunk) each instruction
    runs once per call.
    """
    s = f.stats(kind)
    return int(s["prelude"] + sum(s["body"]) + sum(s["post"]))


# Recorded functions and data, built once per benchmark process. The asv runner may re-run
# ``setup`` before every timed sample (asv_runner >= 0.3 does, with one call per sample when a
# class has a setup): memoizing keeps that cheap, and setup then re-warms the programs so each
# timed call sees warm caches and already-allocated buffers, like a call inside a fit.
_STATE = {}


def _tutorial_state(n):
    key = ("tutorial", n)
    if key not in _STATE:
        x = tutorial.sample(n, np.random.default_rng(0))
        p = np.array(tutorial.TRUTH, dtype=np.float64)
        _STATE[key] = (x, p, tape.record(tutorial.nll, p, data={"x": x}))
    return _STATE[key]


# --------------------------------------------------------------------------------------------------
# the tutorial model (two Gaussians + Chebychev background, 7 parameters, one data column)


class TutorialModel:
    """Tutorial-model NLL (models/tutorial.py) replayed from the tape, against plain numpy.

    Measures, for N in {1e4, 1e5, 1e6} events: the value replay, the value-and-gradient replay,
    the plain numpy NLL on the same events (baseline), recording plus lowering, the peak memory of
    a value_and_grad call, and the ratios value/numpy and value_and_grad/value.

    Targets: value at N = 1e6 <= 0.25x numpy (``track_value_over_numpy``); value_and_grad <= 2.5x
    value (``track_grad_over_value``); record + lower <= 20 ms (``time_record``).
    """

    params = [10**4, 10**5, 10**6]
    param_names = ["n_events"]
    timeout = 120

    def setup(self, n):
        self.x, self.p, self.f = _tutorial_state(n)
        # Warm both programs: lowering and buffer allocation are not part of the replay timings.
        self.f(self.p)
        self.f.value_and_grad(self.p)

    def time_value(self, n):
        """One value replay of the recorded NLL."""
        self.f(self.p)

    def time_value_and_grad(self, n):
        """One replay of the value-and-gradient program (value + full 7-component gradient)."""
        self.f.value_and_grad(self.p)

    def time_numpy_value(self, n):
        """Baseline: the same NLL evaluated by plain numpy/scipy on the event array."""
        tutorial.nll(self.p, self.x)

    def time_record(self, n):
        """``tape.record`` plus the first value call (record, lower the value program, bind, run).

        The first call also evaluates the NLL once, so at large N this includes one value replay.
        Target: <= 20 ms.
        """
        f = tape.record(tutorial.nll, self.p, data={"x": self.x})
        f(self.p)

    def peakmem_value_and_grad(self, n):
        """Peak RSS of the process after setup and one value_and_grad call.

        asv's peakmem is the maximum resident set size of the whole benchmark process, so it
        includes the interpreter, numpy/scipy, the event array and everything setup allocated
        (sampling, recording, both lowered programs), not only the extra memory of this call.
        """
        self.f.value_and_grad(self.p)

    def track_value_over_numpy(self, n):
        """Median tape value time / median plain-numpy time (target <= 0.25 at N = 1e6)."""
        t_val, t_np = median_seconds(lambda: self.f(self.p), lambda: tutorial.nll(self.p, self.x))
        return t_val / t_np

    track_value_over_numpy.unit = "ratio"

    def track_grad_over_value(self, n):
        """Median value_and_grad time / median value time (target <= 2.5)."""
        t_grad, t_val = median_seconds(lambda: self.f.value_and_grad(self.p),
                                       lambda: self.f(self.p))
        return t_grad / t_val

    track_grad_over_value.unit = "ratio"


# --------------------------------------------------------------------------------------------------
# per-call overhead: small data, where fixed costs dominate


class PerCallOverhead:
    """Per-call overhead: one value call of the tutorial NLL at N = 2000 events.

    At this size the replay work is small, so the time is dominated by fixed costs (parameter
    checking, output allocation, locking, the prelude, program dispatch). Plain numpy on the same
    events is the baseline.

    Target: value at N = 2000 <= 15 us.
    """

    N = 2000

    def setup(self):
        self.x, self.p, self.f = _tutorial_state(self.N)
        self.f(self.p)
        self.f.value_and_grad(self.p)
        tutorial.nll(self.p, self.x)   # cheap at this size: warm the baseline too

    def time_value(self):
        """One value call at N = 2000 (target <= 15 us)."""
        self.f(self.p)

    def time_numpy_value(self):
        """Baseline: plain numpy NLL at N = 2000."""
        tutorial.nll(self.p, self.x)

    def track_value_us(self):
        """Median of warm calls (as inside a fit) at N = 2000, in microseconds: time_value with
        --quick is a single call right after setup, which includes cold caches."""
        (t,) = median_seconds(lambda: self.f(self.p), repeat=15)
        return t * 1e6

    track_value_us.unit = "us"


# --------------------------------------------------------------------------------------------------
# tiny-op tape: many instructions on 10-element arrays (the regime of binned models)

N_TERMS = 1430     # 7 instructions per term -> about 10,000 value-program instructions
N_BINS = 10


def _tiny_constants(n_terms=N_TERMS, n_bins=N_BINS, seed=1):
    """Distinct (n_bins,) constants per term, so common-subexpression elimination cannot merge
    the terms."""
    rng = np.random.default_rng(seed)
    c = list(rng.uniform(-1.0, 1.0, (n_terms, n_bins)))
    s = list(rng.uniform(0.5, 1.5, (n_terms, n_bins)))
    w = list(rng.uniform(0.1, 1.0, (n_terms, n_bins)))
    return c, s, w


def make_tiny_op_fn(n_terms=N_TERMS, n_bins=N_BINS):
    c, s, w = _tiny_constants(n_terms, n_bins)

    def fn(p):
        acc = np.zeros(n_bins)
        for c_k, s_k, w_k in zip(c, s, w):
            t = np.exp(-0.5 * ((c_k - p) * s_k) ** 2)
            acc = acc + t * w_k
        return np.sum(acc)

    return fn


class TinyOpTape:
    """Dispatch cost per instruction on a tape of ~10,000 tiny instructions on 10-element arrays.

    The function of a 10-parameter vector sums N_TERMS Gaussian-shaped terms, each with its own
    constant (10,) arrays, with no data (everything runs once per call, in the prelude): the
    regime of binned models, where per-instruction overhead, not arithmetic, sets the speed.
    The instruction counts come from ``Function.stats`` (prelude + sum(body) + sum(post)).

    Targets: value <= 50 ns per instruction; value_and_grad <= 150 ns per *value-program*
    instruction.
    """

    timeout = 120

    def setup(self):
        if "tiny" not in _STATE:
            p = np.linspace(-0.5, 0.5, N_BINS)
            f = tape.record(make_tiny_op_fn(), p, data=None)
            f(p)
            f.value_and_grad(p)
            _STATE["tiny"] = (p, f, n_instructions(f, "value"), n_instructions(f, "grad"))
        self.p, self.f, self.n_value, self.n_grad = _STATE["tiny"]
        self.f(self.p)
        self.f.value_and_grad(self.p)

    def time_value(self):
        """One value replay of the tiny-op tape."""
        self.f(self.p)

    def time_value_and_grad(self):
        """One value-and-gradient replay of the tiny-op tape."""
        self.f.value_and_grad(self.p)

    def track_ns_per_instruction_value(self):
        """Median value time / number of value-program instructions, in ns (target <= 50)."""
        (t,) = median_seconds(lambda: self.f(self.p))
        return t / self.n_value * 1e9

    track_ns_per_instruction_value.unit = "ns"

    def track_ns_per_instruction_grad(self):
        """Median value_and_grad time / number of *value-program* instructions, in ns (target <= 150).

        The divisor is the value program's instruction count (as in the value track), not the
        larger value-and-gradient program's (``track_n_instructions_grad``, about twice as many),
        so this is the cost of value + gradient per recorded operation, not per executed one.
        """
        (t,) = median_seconds(lambda: self.f.value_and_grad(self.p))
        return t / self.n_value * 1e9

    track_ns_per_instruction_grad.unit = "ns"

    def track_n_instructions(self):
        """Instructions one value call runs (value program: prelude + body + post)."""
        return self.n_value

    track_n_instructions.unit = "instructions"

    def track_n_instructions_grad(self):
        """Instructions one value_and_grad call runs (grad program: prelude + body + post)."""
        return self.n_grad

    track_n_instructions_grad.unit = "instructions"
