"""Pdfs, one family per module; ``base.Pdf`` says what a new pdf provides."""
from .argus import ArgusBG
from .base import Pdf
from .breitwigner import BreitWigner
from .crystalball import CrystalBall
from .exponential import Exponential
from .gaussian import Gaussian
from .generic import GenericPdf
from .polynomials import Chebychev, Polynomial
from .prod import ProdPdf
from .sum import SumPdf
from .uniform import Uniform

__all__ = ["Pdf", "Gaussian", "Exponential", "Chebychev", "Polynomial", "BreitWigner", "Uniform",
           "SumPdf", "ProdPdf", "GenericPdf", "CrystalBall", "ArgusBG"]
