"""Workspaces: pyhf JSON files (channels, observations, measurements) and their patches.

>>> from models.histfactory import Workspace
>>> spec = {"channels": [{"name": "SR", "samples": [
...     {"name": "sig", "data": [5.0], "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
...     {"name": "bkg", "data": [50.0], "modifiers": [{"name": "b", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}]}]}],
...     "observations": [{"name": "SR", "data": [53.0]}],
...     "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}], "version": "1.0.0"}
>>> ws = Workspace(spec)
>>> model = ws.model()
>>> model.config.par_names
['mu', 'b']
>>> ws.data(model)
[53.0, 0.0]
"""
import copy
import json
import os

import jsonpatch

from .model import Model
from .schema import InvalidSpecification, validate_measurement, validate_patch, validate_workspace

__all__ = ["Workspace", "PatchSet", "Patch", "load_json"]

_UNSET = object()


def load_json(spec):
    """A dict from a dict (deep-copied), a JSON string of an object, or a path to a JSON file."""
    if isinstance(spec, (str, os.PathLike)):
        if isinstance(spec, str) and spec.lstrip().startswith(("{", "[")):
            return json.loads(spec)
        with open(spec) as fh:
            return json.load(fh)
    return copy.deepcopy(spec)


class Patch:
    """One patch of a patchset: a name, the signal-grid values, and the JSON patch operations."""

    def __init__(self, spec):
        self.metadata = spec.get("metadata", {})
        self.name = self.metadata.get("name")
        self.values = tuple(self.metadata.get("values", ()))
        self.patch = spec["patch"]

    def __repr__(self):
        return f"<Patch {self.name!r} values={self.values}>"


class PatchSet:
    """A pyhf patchset: ``patchset["name"]`` or ``patchset[values]`` gives a ``Patch``."""

    def __init__(self, spec):
        spec = load_json(spec)
        if not isinstance(spec, dict) or "patches" not in spec:
            raise InvalidSpecification("<patchset>: missing required key 'patches'")
        if spec.get("version", "1.0.0") != "1.0.0":
            raise InvalidSpecification(f"version: unsupported patchset version {spec['version']!r}")
        self.metadata = spec.get("metadata", {})
        self.patches = []
        for i, p in enumerate(spec["patches"]):
            if not isinstance(p, dict) or "patch" not in p or "metadata" not in p:
                raise InvalidSpecification(f"patches[{i}]: a patch needs 'metadata' and 'patch'")
            validate_patch(p["patch"], f"patches[{i}].patch")
            self.patches.append(Patch(p))

    def __getitem__(self, key):
        for p in self.patches:
            if key == p.name or (isinstance(key, (tuple, list)) and tuple(key) == p.values):
                return p
        raise KeyError(f"no patch {key!r} in this patchset (names: "
                       f"{[p.name for p in self.patches[:5]]}...)")

    def __iter__(self):
        return iter(self.patches)

    def __len__(self):
        return len(self.patches)

    def apply(self, workspace, key):
        """A new Workspace with patch `key` applied to `workspace`'s channels."""
        ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
        spec = _apply_patches(dict(ws.spec), [self[key]], what="workspace")
        return Workspace(spec)


def _operations(patch, i):
    if isinstance(patch, Patch):
        return patch.patch
    if isinstance(patch, jsonpatch.JsonPatch):
        return list(patch.patch)
    if isinstance(patch, dict) and "patch" in patch:     # a patch of a patchset, as JSON
        return patch["patch"]
    if isinstance(patch, (str, os.PathLike)):
        return _operations(load_json(patch), i)
    return patch


def _apply_patches(spec, patches, what="model"):
    for i, patch in enumerate(patches or []):
        ops = _operations(patch, i)
        validate_patch(ops, f"patches[{i}]")
        try:
            spec = jsonpatch.JsonPatch(ops).apply(spec)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError,
                IndexError, TypeError) as e:
            raise InvalidSpecification(f"patches[{i}]: cannot apply to the {what} "
                                       f"specification: {e}") from None
    return spec


class Workspace:
    """A HistFactory workspace (pyhf JSON schema 1.0.0), validated on construction.

    Parameters
    ----------
    spec : dict, JSON string, or path to a JSON file

    ``model(...)`` builds a ``Model`` for one measurement (optionally patched), ``data(model)``
    the observed counts in the model's channel order followed by the auxiliary data.
    """

    def __init__(self, spec, validate=True):
        self.spec = load_json(spec)
        if validate:
            validate_workspace(self.spec)
        self.version = self.spec.get("version")
        self.channels = sorted(c["name"] for c in self.spec["channels"])
        self.channel_nbins = {c["name"]: len(c["samples"][0]["data"])
                              for c in self.spec["channels"]}
        self.measurement_names = [m["name"] for m in self.spec["measurements"]]
        self.observations = {o["name"]: list(o["data"]) for o in self.spec["observations"]}

    def get_measurement(self, measurement_name=None, measurement_index=None):
        """The measurement named `measurement_name`, or at `measurement_index`, or the first."""
        ms = self.spec["measurements"]
        if measurement_name is not None:
            if measurement_name not in self.measurement_names:
                raise InvalidSpecification(f"measurements: no measurement named "
                                           f"{measurement_name!r} (have {self.measurement_names})")
            m = ms[self.measurement_names.index(measurement_name)]
        else:
            i = 0 if measurement_index is None else measurement_index
            if not -len(ms) <= i < len(ms):
                raise InvalidSpecification(f"measurements: index {i} is out of range "
                                           f"({len(ms)} measurements)")
            m = ms[i]
        validate_measurement(m, f"measurements[{ms.index(m)}]")
        return m

    def model(self, measurement_name=None, measurement_index=None, patches=None, *,
              poi_name=_UNSET, modifier_settings=None, measurement=None):
        """Build the ``Model`` of a measurement, with JSON patches applied to its specification.

        Parameters
        ----------
        measurement_name, measurement_index : optional
            Which measurement (default: the first). ``measurement`` is an alias of the name.
        patches : list, optional
            JSON patches (lists of operations, ``jsonpatch.JsonPatch``, patchset ``Patch``
            objects or their JSON), applied in order to ``{"channels", "parameters"}`` as pyhf
            does.
        poi_name : str or None, optional
            Overrides the measurement's POI; None builds a model without one.
        modifier_settings : dict, optional
            Interpolation codes, e.g. ``{"normsys": {"interpcode": "code1"}}``.
        """
        if measurement is not None:
            measurement_name = measurement
        m = self.get_measurement(measurement_name, measurement_index)
        poi = m["config"]["poi"] if poi_name is _UNSET else poi_name
        # not copied: the model does not modify its specification, and jsonpatch copies
        spec = {"channels": self.spec["channels"], "parameters": m["config"]["parameters"]}
        spec = _apply_patches(spec, patches)
        return Model(spec, poi_name=poi, modifier_settings=modifier_settings)

    def data(self, model, include_auxdata=True):
        """Observed counts in ``model.config.channels`` order, then (by default) the auxdata."""
        out = []
        for c in model.config.channels:
            if c not in self.observations:
                raise InvalidSpecification(f"observations: no observation for channel {c!r} of "
                                           "the model")
            obs = self.observations[c]
            if len(obs) != model.config.channel_nbins[c]:
                raise InvalidSpecification(f"observations: channel {c!r} has {len(obs)} observed "
                                           f"bins, the model has {model.config.channel_nbins[c]}")
            out += [float(v) for v in obs]
        if include_auxdata:
            out += list(model.config.auxdata)
        return out

    def __repr__(self):
        return (f"<histfactory.Workspace {len(self.channels)} channels, measurements "
                f"{self.measurement_names}>")
