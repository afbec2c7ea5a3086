"""Exceptions raised while recording or replaying a tape."""

__all__ = ["TracingError", "ShapeError", "DataError"]


class TracingError(TypeError):
    """A traced value was used in a way that cannot be recorded (Python branching, float())."""


class ShapeError(ValueError):
    """Operand shapes do not fit the op, or an event axis is used where it cannot be."""


class DataError(ValueError):
    """A data array is unusable: NaN/inf, wrong dtype or shape, or event counts that differ."""
