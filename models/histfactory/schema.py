"""Validation of HistFactory JSON (pyhf schema 1.0.0) with the JSON path of each problem.

The checks follow the semantics of pyhf's ``workspace.json``/``model.json``/``defs.json`` schemas
(required keys, no unknown keys, types, modifier data shapes) and add what the schema cannot say:
sample and modifier data have the channel's number of bins, yields are finite and non-negative,
observations are non-negative counts for every channel, names are unique, and modifier names are
not reused across types with incompatible parameters (checked when a model is built).

Every error is an ``InvalidSpecification`` whose message starts with the JSON path of the
offending value, e.g. ``channels[2].samples[0].data: 3 bins, channel 'SR' has 4``.
"""
import math
import numbers

__all__ = ["InvalidSpecification", "MODIFIER_TYPES", "validate_workspace", "validate_model_spec",
           "validate_measurement", "validate_patch"]

MODIFIER_TYPES = ("histosys", "lumi", "normfactor", "normsys", "shapefactor", "shapesys",
                  "staterror")

PARAMETER_KEYS = ("name", "inits", "bounds", "auxdata", "factors", "sigmas", "fixed")


class InvalidSpecification(ValueError):
    """A HistFactory specification that does not follow the schema (the message names where)."""


def _fail(path, msg):
    raise InvalidSpecification(f"{path}: {msg}")


def _is_number(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _obj(x, path, required, allowed):
    if not isinstance(x, dict):
        _fail(path, f"expected an object, got {type(x).__name__}")
    for k in required:
        if k not in x:
            _fail(path, f"missing required key {k!r}")
    extra = [k for k in x if k not in allowed]
    if extra:
        _fail(path, f"unknown key(s) {extra} (allowed: {list(allowed)})")


def _string(x, path):
    if not isinstance(x, str):
        _fail(path, f"expected a string, got {x!r}")
    return x


def _numbers(x, path, *, nonneg=False, what="values", counts=False):
    if not isinstance(x, list) or not x:
        _fail(path, f"expected a non-empty list of numbers, got {_short(x)}")
    for i, v in enumerate(x):
        if not _is_number(v):
            _fail(f"{path}[{i}]", f"expected a number, got {v!r}")
        if not math.isfinite(v):
            _fail(f"{path}[{i}]", f"{what} must be finite, got {v!r}")
        if nonneg and v < 0:
            _fail(f"{path}[{i}]", f"{what} must be non-negative, got {v!r}")
    return x


def _short(x):
    s = repr(x)
    return s if len(s) < 60 else s[:57] + "..."


def _modifier(m, path, nbins, channel, sample):
    if not isinstance(m, dict):
        _fail(path, f"expected a modifier object, got {_short(m)}")
    for k in ("name", "type", "data"):
        if k not in m:
            _fail(path, f"missing required key {k!r}")
    _string(m["name"], f"{path}.name")
    t = m["type"]
    if t not in MODIFIER_TYPES:
        _fail(f"{path}.type", f"unknown modifier type {t!r} of modifier {m['name']!r} on sample "
                              f"{sample!r} in channel {channel!r} (known: {list(MODIFIER_TYPES)})")
    _obj(m, path, ("name", "type", "data"), ("name", "type", "data"))
    d = m["data"]
    where = f"{t} modifier {m['name']!r} on sample {sample!r} in channel {channel!r}"
    if t in ("normfactor", "lumi", "shapefactor"):
        if d is not None:
            _fail(f"{path}.data", f"{where} takes data null, got {_short(d)}")
        if t == "lumi" and m["name"] != "lumi":
            _fail(f"{path}.name", f"a lumi modifier must be named 'lumi', got {m['name']!r}")
    elif t == "normsys":
        _obj(d, f"{path}.data", ("hi", "lo"), ("hi", "lo"))
        for k in ("hi", "lo"):
            v = d[k]
            if not _is_number(v) or not math.isfinite(v):
                _fail(f"{path}.data.{k}", f"{where}: expected a finite number, got {v!r}")
    elif t == "histosys":
        _obj(d, f"{path}.data", ("hi_data", "lo_data"), ("hi_data", "lo_data"))
        for k in ("hi_data", "lo_data"):
            _numbers(d[k], f"{path}.data.{k}", what="yields")
            if len(d[k]) != nbins:
                _fail(f"{path}.data.{k}", f"{len(d[k])} bins, channel {channel!r} has {nbins} "
                                          f"({where})")
    else:  # shapesys, staterror: per-bin absolute uncertainties
        _numbers(d, f"{path}.data", nonneg=True, what="uncertainties")
        if len(d) != nbins:
            _fail(f"{path}.data", f"{len(d)} bins, channel {channel!r} has {nbins} ({where})")


def validate_channels(channels, path="channels"):
    """Check a list of channels; returns {channel name: number of bins}."""
    if not isinstance(channels, list) or not channels:
        _fail(path, "expected a non-empty list of channels")
    nbins = {}
    for ci, c in enumerate(channels):
        cp = f"{path}[{ci}]"
        _obj(c, cp, ("name", "samples"), ("name", "samples"))
        name = _string(c["name"], f"{cp}.name")
        if name in nbins:
            _fail(f"{cp}.name", f"channel {name!r} is defined twice")
        samples = c["samples"]
        if not isinstance(samples, list) or not samples:
            _fail(f"{cp}.samples", f"channel {name!r} needs a non-empty list of samples")
        n = None
        seen = set()
        for si, s in enumerate(samples):
            sp = f"{cp}.samples[{si}]"
            _obj(s, sp, ("name", "data", "modifiers"), ("name", "data", "modifiers"))
            sname = _string(s["name"], f"{sp}.name")
            if sname in seen:
                _fail(f"{sp}.name", f"sample {sname!r} appears twice in channel {name!r}")
            seen.add(sname)
            _numbers(s["data"], f"{sp}.data", nonneg=True, what="yields")
            if n is None:
                n = len(s["data"])
            elif len(s["data"]) != n:
                _fail(f"{sp}.data", f"{len(s['data'])} bins, channel {name!r} has {n}")
            mods = s["modifiers"]
            if not isinstance(mods, list):
                _fail(f"{sp}.modifiers", "expected a list of modifiers")
            keys = set()
            for mi, m in enumerate(mods):
                _modifier(m, f"{sp}.modifiers[{mi}]", n, name, sname)
                key = (m["type"], m["name"])
                if key in keys:
                    _fail(f"{sp}.modifiers[{mi}]", f"{m['type']} modifier {m['name']!r} appears "
                                                   f"twice on sample {sname!r} in channel {name!r}")
                keys.add(key)
        nbins[name] = n
    return nbins


def validate_parameters(params, path):
    if not isinstance(params, list):
        _fail(path, "expected a list of parameter configurations")
    names = set()
    for i, p in enumerate(params):
        pp = f"{path}[{i}]"
        _obj(p, pp, ("name",), PARAMETER_KEYS)
        name = _string(p["name"], f"{pp}.name")
        if name in names:
            _fail(pp, f"parameter {name!r} is configured twice")
        names.add(name)
        for k in ("inits", "auxdata", "factors", "sigmas"):
            if k in p:
                _numbers(p[k], f"{pp}.{k}", nonneg=k in ("sigmas", "factors"))
        if "bounds" in p:
            b = p["bounds"]
            if not isinstance(b, list) or not b:
                _fail(f"{pp}.bounds", "expected a non-empty list of [lo, hi] pairs")
            for j, pair in enumerate(b):
                if (not isinstance(pair, list) or len(pair) != 2
                        or not all(_is_number(v) for v in pair)):
                    _fail(f"{pp}.bounds[{j}]", f"expected [lo, hi], got {_short(pair)}")
                if not pair[0] < pair[1]:
                    _fail(f"{pp}.bounds[{j}]", f"empty bounds {pair} for parameter {name!r}")
        if "fixed" in p and not isinstance(p["fixed"], bool):
            _fail(f"{pp}.fixed", f"expected true or false, got {p['fixed']!r}")


def validate_measurement(m, path="measurement"):
    _obj(m, path, ("name", "config"), ("name", "config"))
    _string(m["name"], f"{path}.name")
    cfg = m["config"]
    _obj(cfg, f"{path}.config", ("poi", "parameters"), ("poi", "parameters"))
    _string(cfg["poi"], f"{path}.config.poi")
    validate_parameters(cfg["parameters"], f"{path}.config.parameters")


def validate_model_spec(spec):
    """Check a model specification {"channels": [...], "parameters": [...]}."""
    _obj(spec, "<model>", ("channels",), ("channels", "parameters"))
    nbins = validate_channels(spec["channels"])
    if "parameters" in spec:
        validate_parameters(spec["parameters"], "parameters")
    return nbins


def validate_workspace(spec):
    """Check a workspace; raises InvalidSpecification naming the JSON path of the first problem."""
    _obj(spec, "<workspace>", ("channels", "measurements", "observations", "version"),
         ("channels", "measurements", "observations", "version"))
    if spec["version"] != "1.0.0":
        _fail("version", f"unsupported version {spec['version']!r} (expected '1.0.0')")
    nbins = validate_channels(spec["channels"])
    obs = spec["observations"]
    if not isinstance(obs, list) or not obs:
        _fail("observations", "expected a non-empty list of observations")
    seen = {}
    for i, o in enumerate(obs):
        op = f"observations[{i}]"
        _obj(o, op, ("name", "data"), ("name", "data"))
        name = _string(o["name"], f"{op}.name")
        if name in seen:
            _fail(f"{op}.name", f"channel {name!r} is observed twice")
        d = _numbers(o["data"], f"{op}.data", nonneg=True, what="observed counts")
        seen[name] = len(d)
        if name in nbins and len(d) != nbins[name]:
            _fail(f"{op}.data", f"{len(d)} bins, channel {name!r} has {nbins[name]}")
    for c in nbins:
        if c not in seen:
            _fail("observations", f"no observation for channel {c!r}")
    ms = spec["measurements"]
    if not isinstance(ms, list) or not ms:
        _fail("measurements", "expected a non-empty list of measurements")
    mnames = set()
    for i, m in enumerate(ms):
        validate_measurement(m, f"measurements[{i}]")
        if m["name"] in mnames:
            _fail(f"measurements[{i}].name", f"measurement {m['name']!r} is defined twice")
        mnames.add(m["name"])
    return nbins


def validate_patch(patch, path="patch"):
    """Check a JSON patch (a list of operations)."""
    if not isinstance(patch, list):
        _fail(path, f"a JSON patch is a list of operations, got {type(patch).__name__}")
    for i, op in enumerate(patch):
        p = f"{path}[{i}]"
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            _fail(p, f"a patch operation needs 'op' and 'path', got {_short(op)}")
        kind = op["op"]
        if kind in ("add", "replace", "test"):
            if "value" not in op:
                _fail(p, f"{kind!r} operation needs a 'value'")
        elif kind in ("move", "copy"):
            if "from" not in op:
                _fail(p, f"{kind!r} operation needs a 'from'")
        elif kind != "remove":
            _fail(f"{p}.op", f"unknown patch operation {kind!r}")
