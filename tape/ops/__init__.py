"""The op set: every primitive with its kernel, numpy reference and derivative rules.

Families live one per module (``elementwise``, ``reductions``, ``structural``, ``linalg``,
``sparse``, ``polynomial``); each
module registers its ops in ``core.OPS`` on import. To add an op: ``defop`` it next to its
family with its rules, and test it with ``tape.check_grads``.
"""
from . import core, elementwise, reductions, structural, linalg, sparse, polynomial  # noqa: F401  (registration)
from .core import OPS, Op, defop, apply  # noqa: F401
