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
    """Record the tutorial NLL on generated events, show value, gradient, timings and a fit.

    Returns the dict of figures it printed (timings in seconds).
    """
    import tape

    from . import tutorial

    def say(*a):
        print(*a, file=out)

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    x = tutorial.sample(n_events, rng)
    t_sample = time.perf_counter() - t0
    say(f"tapefit demo: the RooFit tutorial model (two Gaussians + Chebychev on [0, 10]), "
        f"{n_events:,} events generated in {t_sample:.2f} s")

    t0 = time.perf_counter()
    f = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x})
    f(tutorial.TRUTH)
    t_record = time.perf_counter() - t0
    t0 = time.perf_counter()
    f.value_and_grad(tutorial.TRUTH)
    t_grad_build = time.perf_counter() - t0

    p = tutorial.TRUTH * 1.02
    value, grad = f.value_and_grad(p)
    reference = tutorial.nll(p, x)
    numeric = tape.numerical_grad(f, p)
    say(f"\nNLL at start point  {value:.10f}   (plain numpy: {reference:.10f}, "
        f"relative difference {abs(value - reference) / abs(reference):.1e})")
    say(f"{'parameter':>10} {'start':>8} {'tape gradient':>16} {'central differences':>20}")
    for name, pi, gi, ni in zip(tutorial.NAMES, p, grad, numeric):
        say(f"{name:>10} {pi:8.4f} {gi:16.6f} {ni:20.6f}")

    number = max(1, int(2e6 // max(n_events, 1)))
    t_value = _best_time(lambda: f(p), number=number)
    t_vg = _best_time(lambda: f.value_and_grad(p), number=number)
    t_numpy = _best_time(lambda: tutorial.nll(p, x), number=max(1, number // 3))
    say(f"\ntimings (median of 5, single thread):")
    say(f"  record + lower value program   {t_record * 1e3:9.2f} ms")
    say(f"  gradient program (first use)   {t_grad_build * 1e3:9.2f} ms")
    say(f"  value                          {t_value * 1e3:9.3f} ms   ({t_value / t_numpy:.2f}x plain numpy)")
    say(f"  value and gradient             {t_vg * 1e3:9.3f} ms   ({t_vg / t_value:.2f}x value)")
    say(f"  plain numpy value              {t_numpy * 1e3:9.3f} ms")
    figures = dict(record=t_record, value=t_value, value_and_grad=t_vg, numpy=t_numpy,
                   nll=value, grad=grad)

    if fit:
        from iminuit import Minuit

        m = Minuit(f, tutorial.TRUTH * 1.05, grad=f.grad, name=tutorial.NAMES)
        m.errordef = Minuit.LIKELIHOOD
        m.limits = tutorial.LIMITS
        t0 = time.perf_counter()
        m.migrad()
        m.hesse()
        t_fit = time.perf_counter() - t0
        say(f"\nMigrad with the tape gradient: valid={m.valid}, {m.nfcn} calls, "
            f"{t_fit:.2f} s (with HESSE)")
        say(f"{'parameter':>10} {'fitted':>10} {'error':>10} {'truth':>8}")
        for name, v, e, t in zip(tutorial.NAMES, m.values, m.errors, tutorial.TRUTH):
            say(f"{name:>10} {v:10.5f} {e:10.5f} {t:8.3f}")
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
