"""Build the Cython replay extension.

Compiler directives are set once here; ``TAPEFIT_DEBUG=1`` turns bounds checking and
initialization checks back on for a debug build.
"""
import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("TAPEFIT_DEBUG", "") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": DEBUG,
    "nonecheck": False,
}

extensions = [
    Extension(
        "tape._replay",
        ["tape/_replay.pyx"],
        include_dirs=[np.get_include(), "tape"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
        # -ffp-contract=off: a * b + c rounds twice, as numpy's separate multiply and add do, on
        # every CPU (gcc would fuse it where FMA exists: x*x - m*m then no longer cancels)
        extra_compile_args=(["-O0", "-g"] if DEBUG else ["-O3"]) + ["-fopenmp", "-ffp-contract=off"],
        extra_link_args=["-fopenmp"],
    ),
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
