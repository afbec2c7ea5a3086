"""tapefit's physics layer: parameters, pdfs and likelihoods recorded on the tape.

>>> import numpy as np
>>> from models import Observable, Parameter, Gaussian, Chebychev, SumPdf, UnbinnedNLL
>>> x = Observable("x", (0.0, 10.0))
>>> mu = Parameter("mu", 5.0, limits=(0, 10))
>>> model = SumPdf([Gaussian(x, mu, 0.5), Chebychev(x, [0.2])], [Parameter("f", 0.5, (0, 1))])
>>> data = model.sample(2000, np.random.default_rng(0))
>>> nll = UnbinnedNLL(model, data)        # recorded once; exact gradient and Hessian
>>> nll.fit().valid
True
"""
from .io import read_root
from .nll import (NLL, BinnedNLL, GaussianConstraint, PoissonConstraint, SimultaneousNLL,
                  UnbinnedNLL)
from .parameters import Observable, Parameter
from .pdfs import (ArgusBG, BreitWigner, Chebychev, CrystalBall, Exponential, Gaussian,
                   GenericPdf, Pdf, Polynomial, ProdPdf, SumPdf, Uniform)

__all__ = ["Parameter", "Observable", "Pdf", "Gaussian", "Exponential", "Chebychev",
           "Polynomial", "BreitWigner", "Uniform", "SumPdf", "ProdPdf", "GenericPdf",
           "CrystalBall", "ArgusBG",
           "UnbinnedNLL", "BinnedNLL", "SimultaneousNLL", "NLL", "GaussianConstraint",
           "PoissonConstraint", "read_root"]
