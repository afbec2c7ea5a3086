"""HistFactory on the tape: pyhf JSON workspaces, the likelihood pyhf builds, asymptotic CLs.

>>> import numpy as np
>>> from models.histfactory import Workspace
>>> spec = {"channels": [{"name": "SR", "samples": [
...     {"name": "sig", "data": [5.0, 10.0], "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
...     {"name": "bkg", "data": [50.0, 60.0], "modifiers": [
...         {"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}]}]}],
...     "observations": [{"name": "SR", "data": [55.0, 70.0]}],
...     "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}], "version": "1.0.0"}
>>> ws = Workspace(spec)
>>> model = ws.model()
>>> data = ws.data(model)
>>> nll = model.nll(data)                    # recorded once: value, gradient, Hessian
>>> bool(np.isclose(nll.function(model.config.suggested_init()), -model.logpdf(model.config.suggested_init(), data)))
True
>>> nll.fit().valid
True
"""
from .infer import HypoTestResult, hypotest, upper_limit
from .model import HistFactoryNLL, Model, ModelConfig
from .schema import InvalidSpecification
from .workspace import Patch, PatchSet, Workspace

__all__ = ["Workspace", "Model", "ModelConfig", "HistFactoryNLL", "PatchSet", "Patch",
           "InvalidSpecification", "hypotest", "upper_limit", "HypoTestResult"]
