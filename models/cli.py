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
        figures.update(_fit_comparison(nll, order, tutorial, say))
    return figures


def _fit_comparison(nll, order, tutorial, say):
    """Fit from the same start four ways; print time, calls and agreement of the minima."""
    import tape
    from iminuit import Minuit

    start = nll.start * np.array([1.05 if n != "mu" else 1.01 for n in nll.names])
    start = np.minimum(start, [p.limits[1] for p in nll.parameters])
    limits = [p.limits for p in nll.parameters]
    f = nll.function
    rows = []

    t0 = time.perf_counter()
    m = Minuit(lambda x: f(x), start, name=nll.names)
    m.errordef = 0.5
    m.limits = limits
    m.migrad()
    m.hesse()
    rows.append(("(a) Migrad, numerical gradient", time.perf_counter() - t0, m.nfcn, 0, 0,
                 m.fval, m.valid, np.array(m.values), np.array(m.errors)))
    for label, kw in (("(b) Migrad, tape gradient", dict(hessian_seed=False)),
                      ("(c) Migrad seeded with exact Hessian", dict()),
                      ("(d) trust-region Newton", dict(method="newton"))):
        t0 = time.perf_counter()
        r = nll.fit(start, **kw)
        rows.append((label, time.perf_counter() - t0, r.nfcn, r.ngrad, r.nhess, r.fval, r.valid,
                     np.array(r.values), np.array(r.errors)))
    best = min(row[5] for row in rows)
    say(f"\nfits from the same start (errors of (b)-(d) from the exact Hessian):")
    say(f"  {'method':<38} {'time':>8} {'nfcn':>5} {'ngrad':>5} {'nhess':>5} "
        f"{'NLL - min':>11} valid")
    for label, t, nf, ng, nh, fv, ok, _, _ in rows:
        say(f"  {label:<38} {t:7.2f}s {nf:5d} {ng:5d} {nh:5d} {fv - best:11.2e} {ok}")
    label, t, nf, ng, nh, fv, ok, values, errors = rows[2]
    say(f"\nresult of (c):")
    say(f"  {'parameter':>10} {'fitted':>10} {'error':>10} {'truth':>8}")
    for i, truth in zip(order, tutorial.TRUTH):
        say(f"  {nll.names[i]:>10} {values[i]:10.5f} {errors[i]:10.5f} {truth:8.3f}")
    return dict(fits={row[0]: dict(time=row[1], nfcn=row[2], ngrad=row[3], nhess=row[4],
                                   fval=row[5], valid=row[6]) for row in rows},
                fit_valid=rows[2][6], values=rows[2][7])


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
