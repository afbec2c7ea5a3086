"""One-shot report of the issues' speed targets: medians of interleaved timings, single thread.

Run from the repository root: ``python asv_bench/report.py {engine,memory,models,fit,datasets,hf}``
(the asv benchmarks track the same figures per commit; this prints them in one go, as JSON).
"""
import json, os, sys, time, resource, subprocess
# measure the checkout this file is in (not an installed tapefit elsewhere)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np
import tape
from models import tutorial, UnbinnedNLL
from models.tutorial_model import build
tape.set_num_threads(1)

def med(fn, reps, rounds=9):
    ts = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps): fn()
        ts.append((time.perf_counter() - t) / reps)
    return float(np.median(ts))

def pair(fa, fb, reps_a, reps_b, rounds=9):
    a, b = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps_a): fa()
        a.append((time.perf_counter() - t) / reps_a)
        t = time.perf_counter()
        for _ in range(reps_b): fb()
        b.append((time.perf_counter() - t) / reps_b)
    return float(np.median(a)), float(np.median(b))

what = sys.argv[1]
out = {}
if what == "engine":
    x = tutorial.sample(10**6, np.random.default_rng(0))
    p = tutorial.TRUTH * 1.01
    t0 = time.perf_counter(); f = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x}); f(p); out["record_ms"] = (time.perf_counter() - t0) * 1e3
    f.value_and_grad(p); f.hessian(p)
    tv, tn = pair(lambda: f(p), lambda: tutorial.nll(p, x), 20, 3)
    out["value_ms"], out["numpy_ms"], out["value_over_numpy"] = tv*1e3, tn*1e3, tv/tn
    tv, tg = pair(lambda: f(p), lambda: f.value_and_grad(p), 20, 10)
    out["vg_over_value"] = tg / tv; out["vg_ms"] = tg * 1e3
    tg, th = pair(lambda: f.value_and_grad(p), lambda: f.hessian(p), 10, 3)
    out["hess_ms"], out["hess_over_vg"], out["hess_over_value"] = th*1e3, th/tg, th/tv
    rec = []
    for _ in range(7):
        t0 = time.perf_counter(); g = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x[:1000]}); g(p); rec.append(time.perf_counter() - t0)
    out["record_lower_ms_median"] = float(np.median(rec)) * 1e3
    x2 = x[:2000]; g = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x2}); g(p)
    t2, n2 = pair(lambda: g(p), lambda: tutorial.nll(p, x2), 2000, 300)
    out["n2000_value_us"], out["n2000_numpy_us"] = t2*1e6, n2*1e6
    # tiny-op tape
    rng = np.random.default_rng(0); K = 1430
    C = rng.normal(size=(K, 10)); S = rng.uniform(0.5, 2, (K, 10)); W = rng.normal(size=(K, 10))
    def tiny(q):
        acc = 0.0
        for k in range(K):
            acc = acc + np.exp(-0.5 * ((C[k] - q) * S[k]) ** 2) * W[k]
        return np.sum(acc)
    q = rng.normal(size=10); h = tape.record(tiny, q); h(q); h.value_and_grad(q)
    n = sum([h.stats("value")[k] if k == "prelude" else sum(h.stats("value")[k]) for k in ("prelude", "body", "post")])
    tv = med(lambda: h(q), 200); tg = med(lambda: h.value_and_grad(q), 100)
    out["tiny_instructions"], out["tiny_ns_value"], out["tiny_ns_grad"] = n, tv / n * 1e9, tg / n * 1e9
    # chunked vs unchunked at 1e6
    whole = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": x}, chunk_size=10**6); whole.value_and_grad(p)
    tc, tw = pair(lambda: f.value_and_grad(p), lambda: whole.value_and_grad(p), 5, 5)
    out["chunked_over_single_chunk_vg_1e6"] = tc / tw
elif what == "memory":
    n = 10**7
    xs = np.empty(n); rng = np.random.default_rng(0)
    for i in range(0, n, 10**6): xs[i:i+10**6] = tutorial.sample(10**6, rng)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    f = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": xs}, memory_limit="64MB")
    p = tutorial.TRUTH * 1.01
    f.value_and_grad(p); after_vg = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    f.hessian(p); after_h = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.update(rss_after_data_MB=base, peak_after_vg_MB=after_vg, peak_after_hessian_MB=after_h,
               data_MB=n*8/1e6, excess_over_data_vg_MB=after_vg - n*8/2**20, excess_over_data_hess_MB=after_h - n*8/2**20)
    tc = med(lambda: f.value_and_grad(p), 1, 5)
    whole = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": xs}, chunk_size=n); whole.value_and_grad(p)
    tw = med(lambda: whole.value_and_grad(p), 1, 5)
    out["vg_64MB_over_single_chunk_1e7"] = tc / tw
    out["chunk_rows_vg_64MB"] = f.stats("grad")["chunk_rows"]
elif what == "models":
    model, xo, params = build()
    rng = np.random.default_rng(0)
    ts = []
    for _ in range(5):
        t0 = time.perf_counter(); data = model.sample(10**6, rng); ts.append(time.perf_counter() - t0)
    out["sample_1e6_s"] = float(np.median(ts))
    ts = []
    for _ in range(7):
        t0 = time.perf_counter(); nll = UnbinnedNLL(model, data); nll(nll.start); ts.append(time.perf_counter() - t0)
    out["record_unbinned_ms"] = float(np.median(ts)) * 1e3
    hand = tape.record(tutorial.nll, tutorial.TRUTH, data={"x": data})
    order = [nll.names.index(n) for n in tutorial.NAMES]
    ph = tutorial.TRUTH * 1.01; pn = np.empty(7); pn[order] = ph
    nll.value_and_grad(pn); hand.value_and_grad(ph)
    a, b = pair(lambda: nll.function.value_and_grad(pn), lambda: hand.value_and_grad(ph), 10, 10, 11)
    out["model_vg_over_hand"] = a / b
elif what == "fit":
    from iminuit import Minuit
    for n in (10**5, 10**6):
        model, xo, params = build()
        nll = UnbinnedNLL(model, model.sample(n, np.random.default_rng(0)))
        start = np.minimum(nll.start * np.array([1.05 if k != "mu" else 1.01 for k in nll.names]), [q.limits[1] for q in nll.parameters])
        f = nll.function; f(start); f.value_and_grad(start); f.hessian(start)
        t0 = time.perf_counter(); m = Minuit(lambda v: f(v), start, name=nll.names); m.errordef = 0.5; m.limits = [q.limits for q in nll.parameters]; m.migrad(); m.hesse()
        rows = {"a": dict(time=time.perf_counter() - t0, nfcn=m.nfcn, fval=m.fval)}
        for key, kw in (("b", dict(hessian_seed=False)), ("c", {}), ("d", dict(method="newton"))):
            t0 = time.perf_counter(); r = nll.fit(start, **kw)
            rows[key] = dict(time=time.perf_counter() - t0, nfcn=r.nfcn, ngrad=r.ngrad, nhess=r.nhess, fval=r.fval, valid=r.valid)
        best = min(v["fval"] for v in rows.values() if isinstance(v, dict))
        for v in rows.values(): v["dfval"] = v["fval"] - best  # noqa: E701
        # the targets (issue 6): medians of interleaved runs of (a), (c) and (d)
        ta, tc, td = [], [], []
        for _ in range(5):
            t0 = time.perf_counter(); m = Minuit(lambda v: f(v), start, name=nll.names); m.errordef = 0.5; m.limits = [q.limits for q in nll.parameters]; m.migrad(); m.hesse(); ta.append(time.perf_counter() - t0)
            t0 = time.perf_counter(); nll.fit(start); tc.append(time.perf_counter() - t0)
            t0 = time.perf_counter(); nll.fit(start, method="newton"); td.append(time.perf_counter() - t0)
        rows["c_over_a_median"] = float(np.median(tc) / np.median(ta))
        rows["d_over_c_median"] = float(np.median(td) / np.median(tc))
        rows["c_calls"] = rows["c"]["nfcn"] + rows["c"]["ngrad"]
        out[f"n{n}"] = rows
        if n == 10**5:
            # a 21-point profile of mu, 2.5 sigma each way (warm starts, neighbours' Hessians)
            best = nll.fit(); c, e = best.values["mu"], best.errors["mu"]
            vals = np.linspace(c - 2.5 * e, c + 2.5 * e, 21)
            for meth in ("migrad", "newton"):
                nll.profile("mu", vals[:3], method=meth)
                out[f"profile_mu_21_{meth}_ms"] = med(lambda: nll.profile("mu", vals, method=meth), 1, 5) * 1e3
    model, xo, params = build()
    nll = UnbinnedNLL(model, model.sample(2000, np.random.default_rng(1)))
    t0 = time.perf_counter(); nll.fit(); out["first_fit_with_tape_lowering_s"] = time.perf_counter() - t0
    ts = []
    for _ in range(5):
        t0 = time.perf_counter(); res = nll.toys(100, np.random.default_rng(5)); ts.append(time.perf_counter() - t0)
    out["toys_100x2000_s"] = float(np.median(ts))
    out["toys_valid"] = int(sum(r.valid for r in res))
elif what == "datasets":
    # Newton / Hessian-seeded Migrad time from the demo start over 6 datasets (issue 6), per N
    for n in (10**5, 10**6):
        model, xo, params = build()
        rows = []
        for seed in range(6):
            nll = UnbinnedNLL(model, model.sample(n, np.random.default_rng(seed)))
            start = np.minimum(nll.start * np.array([1.05 if k != "mu" else 1.01 for k in nll.names]), [q.limits[1] for q in nll.parameters])
            nll.fit(start); nll.fit(start, method="newton")
            td, tc = pair(lambda: nll.fit(start, method="newton"), lambda: nll.fit(start), 1, 1, 3)
            d, c = nll.fit(start, method="newton"), nll.fit(start)
            rows.append(dict(d_over_c=td / tc, c_ms=tc * 1e3, newton_ngrad=d.ngrad, newton_nhess=d.nhess,
                             migrad_ngrad=c.ngrad, newton_valid=bool(d.valid), dfval=d.fval - c.fval))
        out[f"n{n}"] = dict(d_over_c_median=float(np.median([r["d_over_c"] for r in rows])), datasets=rows)
elif what == "hf":
    import warnings; warnings.simplefilter("ignore")
    import pyhf
    from models.histfactory import Workspace
    D = "../shared/data/histfactory/"
    for name, patch in [("atlas_susy_2018_06_3LeRJR_BkgOnly.json", "atlas_susy_2018_06_3LeRJR_patch.ERJR_350p0_150p0.json"),
                        ("atlas_susy_2019_08_1Lbb_BkgOnly.json", "atlas_susy_2019_08_1Lbb_patch_C1N2_Wh_hbb_550_200.json"),
                        ("atlas_3Lresonance_BkgOnly.json", None)]:
        spec = json.load(open(D + name)); pt = [json.load(open(D + patch))] if patch else []
        ws = Workspace(spec); model = ws.model(patches=pt) if patch else ws.model(poi_name=None)
        data = ws.data(model); nll = model.nll(data); f = nll.function
        p = np.array(model.config.suggested_init(), float); f(p); f.value_and_grad(p)
        pws = pyhf.Workspace(spec); pm = pws.model(patches=pt) if patch else pws.model(poi_name=None); pd = pws.data(pm)
        pp = np.array(pm.config.suggested_init(), float); pm.logpdf(pp, pd)
        t_ours, t_pyhf = pair(lambda: f(p), lambda: pm.logpdf(pp, pd), 2000, 50)
        t_v, t_grad = pair(lambda: f(p), lambda: f.value_and_grad(p), 1000, 1000)
        t0 = time.perf_counter(); f.hessian(p); t_first_h = time.perf_counter() - t0
        t_h = med(lambda: f.hessian(p), 1, 5)
        t_fit = med(lambda: nll.fit(), 1, 5)
        fresh = ws.model(patches=pt) if patch else ws.model(poi_name=None)
        t0 = time.perf_counter(); r = fresh.nll(ws.data(fresh)).fit(); t_first_fit = time.perf_counter() - t0
        out[name] = dict(npars=len(p), ours_us=t_ours*1e6, pyhf_us=t_pyhf*1e6, ratio=t_ours/t_pyhf,
                         vg_us=t_grad*1e6, vg_over_value=t_grad/t_v, hessian_ms=t_h*1e3,
                         first_hessian_ms=t_first_h*1e3, fit_s=t_fit, first_fit_s=t_first_fit,
                         first_fit_valid=bool(r.valid))
    from models.histfactory import upper_limit
    name, patch = "atlas_susy_2019_08_1Lbb_BkgOnly.json", "atlas_susy_2019_08_1Lbb_patch_C1N2_Wh_hbb_550_200.json"
    ws = Workspace(json.load(open(D + name))); model = ws.model(patches=[json.load(open(D + patch))]); data = ws.data(model)
    upper_limit(data, model, np.linspace(0, 5, 21))
    ts = []
    for _ in range(3):
        t0 = time.perf_counter(); obs, exp = upper_limit(data, model, np.linspace(0, 5, 21)); ts.append(time.perf_counter() - t0)
    out["limit_1Lbb_21_points_s"] = float(np.median(ts)); out["limit_1Lbb_observed"] = obs
print(json.dumps(out, indent=1, default=float))
