"""The ``tapefit`` command line: ``tapefit demo`` records and fits the tutorial model end to end."""
import argparse
import sys
import time

import numpy as np

__all__ = ["main", "demo"]


def _best_time(fn, repeat=5, number=1):
    """Median over `repeat` runs of the mean time of `number` calls of fn, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return float(np.median(times))


def demo(n_events=1_000_000, seed=1, fit=True, out=sys.stdout):
    """The tutorial model end to end: generate, record, check, time, and fit.

    Returns the dict of figures it printed (timings in seconds).
    """
    import tape

    from . import tutorial
    from .nll import UnbinnedNLL
    from .tutorial_model import build

    def say(*a):
        print(*a, file=out)

    model, x, params = build()
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    data = model.sample(n_events, rng)
    t_sample = time.perf_counter() - t0
    say(f"tapefit demo: the RooFit tutorial model (two Gaussians with a shared mean + a "
        f"Chebychev background on [0, 10]),\n{n_events:,} events sampled in {t_sample:.2f} s")

    t0 = time.perf_counter()
    nll = UnbinnedNLL(model, data)
    nll(nll.start)
    t_record = time.perf_counter() - t0
    order = [nll.names.index(name) for name in tutorial.NAMES]

    p = nll.start * 1.02
    value, grad = nll.value_and_grad(p)
    reference = tutorial.nll(p[order], data)
    numeric = tape.numerical_grad(nll.function, p)
    say(f"\nNLL at a start point  {value:.10f}   (hand-written numpy: {reference:.10f}, "
        f"relative difference {abs(value - reference) / abs(reference):.1e})")
    say(f"{'parameter':>10} {'start':>8} {'tape gradient':>16} {'central differences':>20}")
    for i in order:
        say(f"{nll.names[i]:>10} {p[i]:8.4f} {grad[i]:16.6f} {numeric[i]:20.6f}")

    f = nll.function
    f.hessian(p)
    number = max(1, int(2e6 // max(n_events, 1)))
    t_value = _best_time(lambda: f(p), number=number)
    t_vg = _best_time(lambda: f.value_and_grad(p), number=number)
    t_hess = _best_time(lambda: f.hessian(p), repeat=3, number=max(1, number // 4))
    t_numpy = _best_time(lambda: tutorial.nll(p[order], data), number=max(1, number // 3))
    say(f"\ntimings (median, {tape.get_num_threads()} thread(s)):")
    say(f"  record the NLL + first value      {t_record * 1e3:9.2f} ms")
    say(f"  value                             {t_value * 1e3:9.3f} ms   "
        f"({t_value / t_numpy:.2f}x plain numpy)")
    say(f"  value and gradient                {t_vg * 1e3:9.3f} ms   ({t_vg / t_value:.2f}x value)")
    say(f"  exact Hessian (7 x 7)             {t_hess * 1e3:9.3f} ms   ({t_hess / t_value:.1f}x value)")
    say(f"  plain numpy value                 {t_numpy * 1e3:9.3f} ms")
    figures = dict(record=t_record, value=t_value, value_and_grad=t_vg, hessian=t_hess,
                   numpy=t_numpy, nll=value, grad=grad)

    if fit:
        t0 = time.perf_counter()
        m = nll.fit()
        t_fit = time.perf_counter() - t0
        say(f"\nMigrad with the exact tape gradient: valid={m.valid}, {m.nfcn} calls, "
            f"{m.ngrad} gradients, {t_fit:.2f} s")
        say(f"{'parameter':>10} {'fitted':>10} {'error':>10} {'truth':>8}")
        for i, truth in zip(order, tutorial.TRUTH):
            name = nll.names[i]
            say(f"{name:>10} {m.values[name]:10.5f} {m.errors[name]:10.5f} {truth:8.3f}")
        figures.update(fit_valid=m.valid, fit_time=t_fit, values=np.array(m.values))
    return figures


def main(argv=None):
    """Entry point of the ``tapefit`` console script."""
    parser = argparse.ArgumentParser(prog="tapefit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="record and fit the RooFit tutorial model end to end")
    d.add_argument("--events", type=int, default=1_000_000, help="number of generated events")
    d.add_argument("--seed", type=int, default=1, help="random seed of the generated events")
    d.add_argument("--no-fit", action="store_true", help="skip the Migrad fit")
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.events < 1:
            parser.error("--events must be positive")
        demo(args.events, args.seed, fit=not args.no_fit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
