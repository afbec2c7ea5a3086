"""The ``tapefit`` command line.

``tapefit demo`` records and fits the tutorial model end to end; ``tapefit fit WORKSPACE.json``
fits a pyhf JSON workspace; ``tapefit limit WORKSPACE.json`` sets CLs upper limits.
"""
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


def demo(n_events=1_000_000, seed=1, fit=True, out=None):
    """The tutorial model end to end: generate, record, check, time, and fit.

    Returns the dict of figures it printed (timings in seconds).
    """
    out = out or sys.stdout
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


def _workspace_model(path, patch_paths, patch_name=None, poi_required=False):
    """(model, data) of a pyhf JSON workspace with JSON patches or patchset entries applied."""
    import json

    from .histfactory import PatchSet, Workspace
    from .histfactory.schema import InvalidSpecification

    ws = Workspace(path)
    patches = []
    for p in patch_paths or []:
        with open(p) as fh:
            spec = json.load(fh)
        if isinstance(spec, dict) and "patches" in spec:
            ps = PatchSet(spec)
            if patch_name is None and len(ps) != 1:
                raise SystemExit(f"{p} is a patchset of {len(ps)} patches: choose one with "
                                 f"--patch-name ({', '.join(x.name for x in ps)})")
            patches.append(ps[patch_name] if patch_name is not None else next(iter(ps)))
        else:
            patches.append(spec)
    try:
        model = ws.model(patches=patches)
    except InvalidSpecification as e:
        if poi_required or "parameter of interest" not in str(e):
            raise
        # a background-only workspace names a POI its samples do not use: fit without one
        print(f"note: {e.args[0].split(' (parameters')[0]}; fitting without a parameter of "
              "interest", file=sys.stderr)
        model = ws.model(patches=patches, poi_name=None)
    return model, ws.data(model)


def fit_workspace(path, patches=(), patch_name=None, method="migrad", out=None):
    """``tapefit fit``: the best fit of a workspace with errors from the exact Hessian."""
    out = out or sys.stdout
    t0 = time.perf_counter()
    model, data = _workspace_model(path, patches, patch_name)
    t_build = time.perf_counter() - t0
    nll = model.nll(data)
    t0 = time.perf_counter()
    r = nll.fit(method=method)
    t_fit = time.perf_counter() - t0
    cfg = model.config
    print(f"{path}: {len(cfg.par_names)} parameters, model built in {t_build:.2f} s, fitted in "
          f"{t_fit:.2f} s ({r.method}: {r.nfcn} calls, {r.ngrad} gradients, {r.nhess} Hessians)",
          file=out)
    print(f"valid: {r.valid}{'  ' + r.message if r.message else ''};  NLL at minimum "
          f"{r.fval:.6f}", file=out)
    order = list(range(len(r.names)))
    if cfg.poi_index is not None:
        order.remove(cfg.poi_index)
        order.insert(0, cfg.poi_index)
    width = max(len(n) for n in r.names)
    for i in order:
        tag = "  (POI)" if i == cfg.poi_index else ("  fixed" if r.fixed[i] else "")
        print(f"  {r.names[i]:<{width}}  {r.values[i]:>12.6g} +- {r.errors[i]:<10.4g}{tag}",
              file=out)
    return r


def limit_workspace(path, patches=(), patch_name=None, scan=(0.0, 5.0, 21), level=0.05,
                    progress=None, out=None):
    """``tapefit limit``: observed and expected CLs upper limits on the POI (qtilde, asymptotic)."""
    out = out or sys.stdout
    from tape.profile import _Progress

    from .histfactory.infer import Hypotester

    model, data = _workspace_model(path, patches, patch_name, poi_required=True)
    lo, hi, n = scan
    mus = np.linspace(lo, hi, int(n))
    tester = Hypotester(data, model)
    bar = _Progress(mus.size, "CLs scan", sys.stderr.isatty() if progress is None else progress)
    t0 = time.perf_counter()
    results = []
    for mu in mus:
        results.append(tester.test(mu))
        bar.step()
    obs = np.array([r.cls for r in results])
    exp = np.array([r.cls_expected for r in results])
    if obs.min() > level or exp.min() > level:
        print(f"warning: CLs stays above {level} up to mu = {hi}: widen the scan (--scan)",
              file=out)
    observed = float(np.interp(level, obs[::-1], mus[::-1]))
    expected = [float(np.interp(level, exp[::-1, i], mus[::-1])) for i in range(5)]
    print(f"{path}: CLs upper limits at {100 * (1 - level):.0f}% CL ({mus.size} scan points, "
          f"{time.perf_counter() - t0:.1f} s)", file=out)
    print(f"  observed          {observed:.4f}", file=out)
    for label, v in zip(("expected -2 sigma", "expected -1 sigma", "expected median",
                         "expected +1 sigma", "expected +2 sigma"), expected):
        print(f"  {label:<17} {v:.4f}", file=out)
    return observed, expected


def main(argv=None):
    """Entry point of the ``tapefit`` console script."""
    parser = argparse.ArgumentParser(prog="tapefit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="record and fit the RooFit tutorial model end to end")
    d.add_argument("--events", type=int, default=1_000_000, help="number of generated events")
    d.add_argument("--seed", type=int, default=1, help="random seed of the generated events")
    d.add_argument("--no-fit", action="store_true", help="skip the fits")
    for name, text in (("fit", "best fit of a pyhf JSON workspace, errors from the exact Hessian"),
                       ("limit", "observed and expected CLs upper limits of a pyhf workspace")):
        c = sub.add_parser(name, help=text)
        c.add_argument("workspace", help="pyhf JSON workspace")
        c.add_argument("--patch", action="append", default=[],
                       help="JSON patch or patchset file (repeatable)")
        c.add_argument("--patch-name", help="which patch of a patchset")
        if name == "fit":
            c.add_argument("--method", choices=["migrad", "newton"], default="migrad")
        else:
            c.add_argument("--scan", nargs=3, type=float, default=(0.0, 5.0, 21),
                           metavar=("LO", "HI", "N"), help="POI scan (default 0 5 21)")
            c.add_argument("--cl", type=float, default=0.95, help="confidence level")
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.events < 1:
            parser.error("--events must be positive")
        demo(args.events, args.seed, fit=not args.no_fit)
    else:
        from .histfactory.schema import InvalidSpecification
        if args.command == "limit" and (not 0 < args.cl < 1 or args.scan[2] < 2
                                        or args.scan[0] >= args.scan[1]):
            parser.error("need 0 < --cl < 1 and a scan LO < HI with N >= 2")
        try:
            if args.command == "fit":
                fit_workspace(args.workspace, args.patch, args.patch_name, args.method)
            else:
                limit_workspace(args.workspace, args.patch, args.patch_name,
                                (args.scan[0], args.scan[1], int(args.scan[2])), 1 - args.cl)
        except (InvalidSpecification, OSError, ValueError) as e:
            print(f"tapefit {args.command}: error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
