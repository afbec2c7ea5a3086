"""``tape.record``: run a likelihood once on tracers and keep what it did as a tape."""
import numpy as np

from .data import check_data
from .errors import ShapeError
from .function import Function, chunk_rows_for
from .ir import Graph
from .tracer import Tracer

__all__ = ["record"]


def record(fn, params, data=None, *, chunk_size=None, memory_limit=None):
    """Record ``fn(p, **data)`` on a tape and return it as a compiled ``tape.Function``.

    Parameters
    ----------
    fn : callable
        ``fn(p, **data) -> scalar``, written with numpy (or ``tape.*``) operations. ``p`` is a
        traced parameter vector: index or unpack it. Each data array is traced with its event
        axis first; reduce over it (``np.sum``) to return a scalar.
    params : array_like, shape (n,)
        Parameter values; only their number is used while recording.
    data : dict of str -> array_like, optional
        Event arrays, axis 0 the event axis (same length for all). They are tape inputs: use
        ``Function.with_data`` to replay on other events.
    chunk_size : int, optional
        Events per chunk of the body replay (default: sized to keep a chunk in cache).
    memory_limit : int or str, optional
        Bound on the chunk buffers, e.g. ``"64MB"``; sets the chunk size when `chunk_size` is not
        given.

    Returns
    -------
    tape.Function

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = np.array([0.5, 1.5, 2.5])
    >>> def nll(p, x):
    ...     mu, sigma = p
    ...     return np.sum(0.5 * ((x - mu) / sigma) ** 2 + np.log(sigma))
    >>> f = tape.record(nll, [1.0, 1.0], data={"x": x})
    >>> round(f([1.5, 1.0]), 12)
    1.0
    >>> f.grad([1.5, 1.0])
    array([0., 1.])
    """
    p0 = np.asarray(params, dtype=np.float64)
    if p0.ndim != 1:
        raise ShapeError(f"params must be a 1-D vector, got shape {p0.shape}")
    arrays, n_events = check_data(data)
    chunk_rows_for(1, chunk_size, memory_limit)  # validate options before recording
    graph = Graph(n_events=n_events)
    p = Tracer(graph, graph.input_params(p0.size))
    traced = {name: Tracer(graph, graph.input_data(name, a.shape[1:])) for name, a in arrays.items()}
    result = fn(p, **traced)
    out = _output_node(graph, result)
    return Function(graph, out, arrays, n_events, chunk_size, memory_limit)


def _output_node(graph, result):
    from . import math as T
    if not isinstance(result, Tracer):
        val = np.asarray(result, dtype=np.float64)
        if val.size != 1:
            raise ShapeError(f"the recorded function must return a scalar, got shape {val.shape}")
        return graph.const(val.reshape(()))
    if result.graph is not graph:
        raise ValueError("the recorded function returned a value traced in another recording")
    if result.event:
        raise ShapeError(f"the recorded function returned an array with the event axis "
                         f"(shape {result.shape}); sum over events (np.sum) to get the NLL")
    if result.node.size != 1:
        raise ShapeError(f"the recorded function must return a scalar, got shape {result.shape}")
    return T.reshape_trailing(result, ()).id
