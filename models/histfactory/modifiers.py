"""Modifiers: parameter sets and the static index tables of a HistFactory model.

``build(spec, parameters)`` walks a validated model specification once and returns a ``Layout``:

- the parameter sets in pyhf's order (modifier types in the order histosys, lumi, normfactor,
  normsys, shapefactor, shapesys, staterror; within a type, channels and samples sorted by name,
  then modifiers sorted by name; a name used again keeps its first position), with pyhf's defaults
  and the measurement's overrides (inits, bounds, fixed, auxdata, sigmas, factors);
- the "entries" (a sample defined in a channel) and "entry bins" (one per bin of an entry);
- per modifier type, flat arrays of parameter indices and constants (one item per
  (modifier, sample, channel) or per (modifier, sample, bin)), and the constant sparse matrices
  (``h_matrix``, ``n_linear``) and polynomial coefficients (``n_poly``) through which the model
  applies per-parameter interpolation weights to all items of a type at once;
- the auxiliary-data layout of the constraint terms (Gaussian: normsys, histosys, lumi, staterror;
  Poisson: shapesys with pyhf's gamma parametrization, rate gamma * tau, tau = (nominal /
  uncertainty)^2, auxdata tau).

Items that cannot change a yield (histosys with hi = lo = nominal, normsys with hi = lo = 1) keep
their parameter but are left out of the arrays.
"""
import math

import numpy as np

from .schema import InvalidSpecification

__all__ = ["TYPE_ORDER", "ParamSet", "Layout", "build"]

TYPE_ORDER = ("histosys", "lumi", "normfactor", "normsys", "shapefactor", "shapesys", "staterror")
_KEYS = ("paramset_type", "n_parameters", "is_scalar", "inits", "bounds", "auxdata", "factors",
         "sigmas", "fixed")
_USER_KEYS = ("inits", "bounds", "auxdata", "factors", "sigmas", "fixed")


class ParamSet:
    """A named set of parameters (one for scalar modifiers, one per bin for shape modifiers).

    ``pdf_type`` is None (unconstrained), "normal" or "poisson".
    """

    def __init__(self, name, req):
        self.name = name
        self.n_parameters = req["n_parameters"]
        self.is_scalar = req["is_scalar"]
        self.paramset_type = req["paramset_type"]
        self.suggested_init = [float(v) for v in req["inits"]]
        self.suggested_bounds = [tuple(float(x) for x in b) for b in req["bounds"]]
        fixed = req["fixed"]
        self.suggested_fixed = ([bool(fixed)] * self.n_parameters if isinstance(fixed, bool)
                                else [bool(v) for v in fixed])
        self.pdf_type = {"unconstrained": None, "constrained_by_normal": "normal",
                         "constrained_by_poisson": "poisson"}[self.paramset_type]
        self.constrained = self.pdf_type is not None
        if self.pdf_type is not None:
            self.auxdata = [float(v) for v in req["auxdata"]]
        if self.pdf_type == "normal":
            sig = req.get("sigmas")
            self.sigmas = [float(v) for v in sig] if sig else [1.0] * self.n_parameters
        if self.pdf_type == "poisson":
            self.factors = [float(v) for v in req["factors"]]
        for key in ("suggested_init", "suggested_bounds", "suggested_fixed"):
            if len(getattr(self, key)) != self.n_parameters:
                raise InvalidSpecification(f"parameter {name!r}: {len(getattr(self, key))} "
                                           f"values for {key[10:]}, expected {self.n_parameters}")

    def __repr__(self):
        return f"<ParamSet {self.name!r} n={self.n_parameters} {self.pdf_type or 'unconstrained'}>"


def _req(kind, n, *, inits, bounds, fixed, auxdata=None, sigmas=None, factors=None,
         scalar=True):
    r = {"paramset_type": kind, "n_parameters": n, "is_scalar": scalar, "inits": inits,
         "bounds": bounds, "fixed": fixed}
    if kind != "unconstrained":
        r["auxdata"] = auxdata
    if kind == "constrained_by_normal" and sigmas != "undefined":
        r["sigmas"] = sigmas
    if kind == "constrained_by_poisson":
        r["factors"] = factors
    return r


_NORMAL_UNIT = dict(inits=(0.0,), bounds=((-5.0, 5.0),), fixed=False, auxdata=(0.0,),
                    sigmas="undefined")


class Layout:
    """Static structure of a model: names, parameter sets, index tables (see the module doc)."""


def build(spec, user_parameters=(), *, normsys_code="code4", histosys_code="code4p"):
    channels_spec = {c["name"]: c for c in spec["channels"]}
    channels = sorted(channels_spec)
    nbins = {c: len(channels_spec[c]["samples"][0]["data"]) for c in channels}
    samples = sorted({s["name"] for c in spec["channels"] for s in c["samples"]})
    modifiers = sorted({(m["name"], m["type"]) for c in spec["channels"] for s in c["samples"]
                        for m in s["modifiers"]})
    offsets, start = {}, 0
    for c in channels:
        offsets[c] = start
        start += nbins[c]
    n_bins = start
    lookup = {}     # (channel, sample) -> (sample spec, {(type, name): modifier}, path)
    for ci, c in enumerate(spec["channels"]):
        for si, s in enumerate(c["samples"]):
            mods = {(m["type"], m["name"]): (m, f"channels[{ci}].samples[{si}].modifiers[{mi}]")
                    for mi, m in enumerate(s["modifiers"])}
            lookup[(c["name"], s["name"])] = (s, mods, f"channels[{ci}].samples[{si}]")
    # (channel, sample, sample spec, modifiers, path) of each defined sample, channel by channel
    entries = [(c, s) + lookup[(c, s)] for c in channels for s in samples if (c, s) in lookup]

    # -- parameter requirements, in pyhf's order ----------------------------------------------
    reqs, where = {}, {}

    def require(name, req, what):
        if name in reqs:
            if reqs[name] != req:
                diff = [k for k in _KEYS if reqs[name].get(k, "undefined") != req.get(k, "undefined")]
                raise InvalidSpecification(
                    f"{what}: modifier name {name!r} is reused with incompatible parameters "
                    f"({', '.join(diff)} differ from {where[name]}); use unique modifier names")
            return
        reqs[name], where[name] = req, what

    shapesys_seen = {}
    for mtype in TYPE_ORDER:
        if mtype == "staterror":
            continue
        for c, s, sspec, mods, spath in entries:
            for name, t in modifiers:
                if t != mtype or (t, name) not in mods:
                    continue
                m, mpath = mods[(t, name)]
                what = f"{mpath} ({t} {name!r} on sample {s!r} in channel {c!r})"
                nom = sspec["data"]
                if t in ("histosys", "normsys"):
                    req = _req("constrained_by_normal", 1, **_NORMAL_UNIT)
                elif t == "lumi":
                    req = _req("constrained_by_normal", 1, inits=None, bounds=None,
                               fixed=False, auxdata=None, sigmas=None)
                elif t == "normfactor":
                    req = _req("unconstrained", 1, inits=(1.0,), bounds=((0.0, 10.0),),
                               fixed=False)
                elif t == "shapefactor":
                    n = len(nom)
                    req = _req("unconstrained", n, inits=(1.0,) * n,
                               bounds=((0.0, 10.0),) * n, fixed=False, scalar=False)
                else:  # shapesys
                    if name in shapesys_seen:
                        raise InvalidSpecification(
                            f"{what}: shapesys {name!r} is already used by "
                            f"{shapesys_seen[name]}; a shapesys modifier belongs to one sample")
                    shapesys_seen[name] = f"sample {s!r} in channel {c!r}"
                    valid = [n_ > 0 and u > 0 for n_, u in zip(nom, m["data"])]
                    tau = tuple(n_ ** 2 / u ** 2 if ok else 1.0
                                for ok, n_, u in zip(valid, nom, m["data"]))
                    n = len(nom)
                    req = _req("constrained_by_poisson", n, inits=(1.0,) * n,
                               bounds=((1e-10, 10.0),) * n, fixed=tuple(not v for v in valid),
                               auxdata=tau, factors=tau, scalar=False)
                require(name, req, what)

    # staterror: one parameter per bin it covers, shared by the samples that carry it
    stat_masks = {}
    for name in sorted({n for n, t in modifiers if t == "staterror"}):
        mask = None
        first = None
        nomsall = np.zeros(n_bins)
        unc = {}
        for s in samples:
            smask = np.zeros(n_bins, dtype=bool)
            su = np.zeros(n_bins)
            snom = np.zeros(n_bins)
            for c in channels:
                entry = lookup.get((c, s))
                if entry is None:
                    continue
                sl = slice(offsets[c], offsets[c] + nbins[c])
                snom[sl] = entry[0]["data"]
                if ("staterror", name) in entry[1]:
                    smask[sl] = True
                    su[sl] = entry[1][("staterror", name)][0]["data"]
            if not smask.any():
                continue
            if mask is None:
                mask, first = smask, s
            elif not np.array_equal(mask, smask):
                raise InvalidSpecification(
                    f"staterror {name!r}: sample {s!r} carries it in other channels than sample "
                    f"{first!r}; a staterror modifier must cover the same channels for all its "
                    "samples")
            nomsall += snom
            unc[s] = su
        rel2 = np.zeros(n_bins)
        for su in unc.values():
            with np.errstate(divide="ignore", invalid="ignore"):
                rel2 += np.where(nomsall > 0, (su / np.where(nomsall > 0, nomsall, 1.0)) ** 2, 0.0)
        sigmas = np.sqrt(rel2)[mask]
        fixed = tuple(bool(v) for v in sigmas == 0)
        sigmas = np.where(sigmas == 0, 1.0, sigmas)
        n = int(mask.sum())
        stat_masks[name] = mask
        require(name, _req("constrained_by_normal", n, inits=(1.0,) * n,
                           bounds=((1e-10, 10.0),) * n, fixed=fixed, auxdata=(1.0,) * n,
                           sigmas=tuple(float(v) for v in sigmas), scalar=False),
                f"staterror {name!r}")

    # -- measurement overrides -------------------------------------------------------------------
    user = {}
    for i, p in enumerate(user_parameters):
        if p["name"] in user:
            raise InvalidSpecification(f"parameters[{i}]: parameter {p['name']!r} is configured "
                                       "twice")
        user[p["name"]] = (p, i)
    paramsets = {}
    for name, req in reqs.items():
        final = dict(req)
        if name in user:
            cfg, i = user[name]
            for k in _USER_KEYS:
                if k not in cfg:
                    continue
                v = cfg[k]
                if k not in req:
                    raise InvalidSpecification(
                        f"parameters[{i}].{k}: parameter {name!r} ({where[name]}) does not use "
                        f"the {k!r} attribute")
                default = req[k]
                if isinstance(v, list) and default and not isinstance(default, bool) \
                        and len(v) != len(default):
                    raise InvalidSpecification(
                        f"parameters[{i}].{k}: {len(v)} values for parameter {name!r}, expected "
                        f"{len(default)}")
                final[k] = v
        missing = [k for k in ("inits", "bounds", "auxdata") if k in final
                   and final[k] is None]
        if missing:
            raise InvalidSpecification(
                f"parameter {name!r} ({where[name]}) needs {missing} in the measurement's "
                "config.parameters (a lumi parameter has no defaults)")
        paramsets[name] = ParamSet(name, final)
        if paramsets[name].pdf_type == "normal" and any(s <= 0 for s in paramsets[name].sigmas):
            raise InvalidSpecification(f"parameter {name!r}: sigmas must be positive")

    # -- the layout ------------------------------------------------------------------------------
    L = Layout()
    L.channels, L.samples, L.modifiers, L.channel_nbins = channels, samples, modifiers, nbins
    L.channel_offsets, L.n_bins = offsets, n_bins
    L.normsys_code, L.histosys_code = normsys_code, histosys_code
    L.par_order = list(reqs)
    L.paramsets = paramsets
    L.par_slices, k = {}, 0
    for name in L.par_order:
        n = paramsets[name].n_parameters
        L.par_slices[name] = slice(k, k + n)
        k += n
    L.npars = k
    first = {name: sl.start for name, sl in L.par_slices.items()}

    entry_chan, entry_sample, eb_entry, eb_bin, eb_nom = [], [], [], [], []
    direct = []        # per entry bin: parameter indices of the factors
    h_pidx, h_eb, h_hi, h_nom, h_lo = [], [], [], [], []
    n_pidx, n_entry, n_hi, n_lo, n_what = [], [], [], [], []
    for c, s, sspec, mods, spath in entries:
        e = len(entry_chan)
        entry_chan.append(c)
        entry_sample.append(s)
        eb0 = len(eb_entry)
        for j, v in enumerate(sspec["data"]):
            eb_entry.append(e)
            eb_bin.append(offsets[c] + j)
            eb_nom.append(float(v))
            direct.append([])
        for (t, name), (m, mpath) in sorted(mods.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            p0 = first[name]
            if t in ("normfactor", "lumi"):
                for j in range(nbins[c]):
                    direct[eb0 + j].append(p0)
            elif t in ("shapefactor", "shapesys"):
                for j in range(nbins[c]):
                    direct[eb0 + j].append(p0 + j)
            elif t == "staterror":
                rank = np.cumsum(stat_masks[name]) - 1
                for j in range(nbins[c]):
                    direct[eb0 + j].append(p0 + int(rank[offsets[c] + j]))
            elif t == "normsys":
                hi, lo = float(m["data"]["hi"]), float(m["data"]["lo"])
                if hi <= 0 or lo <= 0:
                    raise InvalidSpecification(
                        f"{mpath}.data: normsys {name!r} on sample {s!r} in channel {c!r} has "
                        f"hi={hi}, lo={lo}; the factors must be positive")
                if hi == 1.0 and lo == 1.0:
                    continue
                n_pidx.append(p0)
                n_entry.append(e)
                n_hi.append(hi)
                n_lo.append(lo)
                n_what.append(f"normsys {name!r} on sample {s!r} in channel {c!r}")
            elif t == "histosys":
                for j in range(nbins[c]):
                    hi = float(m["data"]["hi_data"][j])
                    lo = float(m["data"]["lo_data"][j])
                    nom = float(sspec["data"][j])
                    if hi == nom and lo == nom:
                        continue
                    h_pidx.append(p0)
                    h_eb.append(eb0 + j)
                    h_hi.append(hi)
                    h_nom.append(nom)
                    h_lo.append(lo)
    L.entry_channel, L.entry_sample = entry_chan, entry_sample
    L.n_entries, L.n_eb = len(entry_chan), len(eb_entry)
    L.eb_entry = np.array(eb_entry, dtype=np.int64)
    L.eb_bin = np.array(eb_bin, dtype=np.int64)
    L.eb_nominal = np.array(eb_nom, dtype=np.float64)
    # direct factors as "levels": level k holds the k-th factor of every entry bin, or the index
    # npars (a constant 1 appended to the parameter vector) where an entry bin has fewer
    depth = max((len(d) for d in direct), default=0)
    L.direct_levels = [np.array([d[k] if k < len(d) else L.npars for d in direct],
                                dtype=np.int64) for k in range(depth)]
    L.h_pidx = np.array(h_pidx, dtype=np.int64)
    L.h_eb = np.array(h_eb, dtype=np.int64)
    h_hi, h_nom, h_lo = (np.array(a, dtype=np.float64) for a in (h_hi, h_nom, h_lo))
    L.h_hi, L.h_nom, L.h_lo = h_hi, h_nom, h_lo
    L.h_up, L.h_dn = h_hi - h_nom, h_nom - h_lo
    L.n_pidx = np.array(n_pidx, dtype=np.int64)
    L.n_entry = np.array(n_entry, dtype=np.int64)
    L.n_hi, L.n_lo = np.array(n_hi, dtype=np.float64), np.array(n_lo, dtype=np.float64)
    L.n_log_hi, L.n_log_lo = np.log(L.n_hi), np.log(L.n_lo)
    L.n_what = n_what
    # the per-parameter interpolation weights reach the items through sparse matrices
    from .interpolation import code4_coefficients, item_matrix
    L.h_par = L.h_matrix = L.n_par = L.n_linear = L.n_poly = None
    if len(h_pidx):
        # symmetric items (up == dn) take one non-zero, on the weight wu + wd
        sym = L.h_up == L.h_dn
        L.h_par, L.h_matrix = item_matrix(L.h_eb, L.h_pidx, L.n_eb,
                                          [np.where(sym, 0.0, L.h_up), np.where(sym, 0.0, L.h_dn),
                                           np.where(sym, L.h_up, 0.0)])
    if len(n_pidx):
        L.n_par, L.n_linear = item_matrix(L.n_entry, L.n_pidx, L.n_entries,
                                          [L.n_log_hi, L.n_log_lo])
        if normsys_code == "code4":      # 1 + sum_k a_k x^k, x taken per item from n_par
            L.n_poly = np.concatenate([np.ones((1, len(n_pidx))),
                                       code4_coefficients(L.n_hi, L.n_lo)])
            L.n_col = np.searchsorted(L.n_par, L.n_pidx)

    # -- auxiliary data: constrained parameter sets in parameter order ---------------------------
    aux_order, auxdata, aux_pidx, aux_scale = [], [], [], []
    g_pos, g_pidx, g_sigma, p_pos, p_pidx, p_factor = [], [], [], [], [], []
    for name in L.par_order:
        ps = paramsets[name]
        if not ps.constrained:
            continue
        aux_order.append(name)
        sl = L.par_slices[name]
        for i in range(ps.n_parameters):
            pos = len(auxdata)
            auxdata.append(ps.auxdata[i])
            aux_pidx.append(sl.start + i)
            if ps.pdf_type == "normal":
                aux_scale.append(1.0)
                g_pos.append(pos)
                g_pidx.append(sl.start + i)
                g_sigma.append(ps.sigmas[i])
            else:
                aux_scale.append(ps.factors[i])
                p_pos.append(pos)
                p_pidx.append(sl.start + i)
                p_factor.append(ps.factors[i])
    L.auxdata_order, L.auxdata = aux_order, auxdata
    L.aux_pidx = np.array(aux_pidx, dtype=np.int64)
    L.aux_scale = np.array(aux_scale, dtype=np.float64)
    L.g_pos, L.g_pidx = np.array(g_pos, dtype=np.int64), np.array(g_pidx, dtype=np.int64)
    L.g_sigma = np.array(g_sigma, dtype=np.float64)
    L.g_norm = np.log(L.g_sigma * math.sqrt(2.0 * math.pi))     # -log of the density's prefactor
    L.p_pos, L.p_pidx = np.array(p_pos, dtype=np.int64), np.array(p_pidx, dtype=np.int64)
    L.p_factor = np.array(p_factor, dtype=np.float64)
    return L
