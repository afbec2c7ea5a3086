"""Saving and loading recorded tapes: a versioned, validated file format; pickling.

A saved Function is its graph (every node, constants included, derivative nodes too) plus,
optionally, its data arrays. Replaying it needs no Python code from the session that recorded it:
the graph is lowered again, deterministically, into the same programs, so a loaded Function gives
bit-for-bit the results of the original.

The file is a zip archive (numpy ``.npz``, loaded with ``allow_pickle=False``) whose ``header``
member is JSON with a magic string and a format version. The zip's checksums catch truncated or
corrupted files.
"""
import io
import json
import zipfile

import numpy as np

from .errors import DataError
from .ir import Graph

__all__ = ["save", "load", "dumps", "loads", "FORMAT_VERSION", "TapeFileError"]

MAGIC = "tapefit-tape"
FORMAT_VERSION = 1


class TapeFileError(ValueError):
    """A file given to ``tape.load`` is not a readable tape of a supported format version."""


def _tuplify(x):
    if isinstance(x, list):
        return tuple(_tuplify(v) for v in x)
    return x


def _header(f, include_data):
    g = f._graph
    return {
        "magic": MAGIC,
        "version": FORMAT_VERSION,
        "nodes": [[n.op, list(n.args), list(n.shape), n.event, n.attrs] for n in g.nodes],
        "params": g.params, "direction": g.direction, "n_events_id": g.n_events_id,
        "data_nodes": g.data, "record_n_events": g.n_events,
        "out": f._out, "grad": f._shared.get("grad"),
        "chunk_size": f._chunk_size,
        "memory_limit": f._memory_limit,
        "data": sorted(f._data) if include_data else None,
        "n_events": f._n_events if include_data else None,
        "stride": f._stride,
    }


def dumps(f, include_data=True):
    """The bytes of a saved Function (see ``save``)."""
    arrays = {"header": np.frombuffer(json.dumps(_header(f, include_data)).encode(), np.uint8)}
    for nid, value in f._graph.consts.items():
        arrays[f"const_{nid}"] = value
    if include_data:
        for name, value in f._data.items():
            arrays[f"data_{name}"] = value
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def save(f, path, include_data=True):
    """Save a recorded ``tape.Function`` to `path`, with its data arrays unless told otherwise.

    Examples
    --------
    >>> import numpy as np, tape, tempfile, os
    >>> f = tape.record(lambda p, x: np.sum((x - p[0]) ** 2), [0.0], data={"x": np.arange(3.0)})
    >>> path = os.path.join(tempfile.mkdtemp(), "nll.tape")
    >>> tape.save(f, path)
    >>> tape.load(path)([1.0])
    2.0
    """
    data = dumps(f, include_data)
    with open(path, "wb") as fh:
        fh.write(data)


def loads(blob, what="the data"):
    """A Function from the bytes made by ``dumps``."""
    from .function import Function

    if not zipfile.is_zipfile(io.BytesIO(blob)):
        raise TapeFileError(f"{what} is not a tapefit tape (not a zip archive; truncated or of "
                            "another kind)")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            if "header" not in z.files:
                raise TapeFileError(f"{what} is not a tapefit tape (no header)")
            header = json.loads(z["header"].tobytes().decode())
            arrays = {k: z[k] for k in z.files if k != "header"}
    except TapeFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, UnicodeDecodeError) as e:
        raise TapeFileError(f"{what} is not a readable tapefit tape (truncated, corrupt or of "
                            f"another kind): {e}") from None
    if not isinstance(header, dict) or header.get("magic") != MAGIC:
        raise TapeFileError(f"{what} is not a tapefit tape (wrong magic)")
    version = header.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise TapeFileError(f"{what} has tape format version {version!r}; this tapefit reads "
                            f"versions 1 to {FORMAT_VERSION}: upgrade tapefit to load it")
    try:
        graph = _rebuild_graph(header, arrays)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise TapeFileError(f"{what} holds an invalid tape: {e}") from None
    shared = None
    if header.get("grad") is not None:
        import threading
        shared = {"specs": {}, "lock": threading.Lock(), "grad": header["grad"]}
    if header.get("data") is not None:
        data = {name: arrays[f"data_{name}"] for name in header["data"]}
        n_events = int(header["n_events"])
    else:
        data, n_events = None, 0
    stride = header.get("stride", 1)
    if not isinstance(stride, int) or stride < 1:
        raise TapeFileError(f"{what} holds an invalid subsample stride {stride!r}")
    return Function(graph, int(header["out"]), data, n_events, header.get("chunk_size"),
                    header.get("memory_limit"), _shared=shared, _stride=stride)


def load(path):
    """Load a Function saved by ``tape.save`` (validated; a bad file raises TapeFileError)."""
    with open(path, "rb") as fh:
        blob = fh.read()
    return loads(blob, what=repr(str(path)))


def _rebuild_graph(header, arrays):
    from .ops.core import OPS

    graph = Graph(n_events=header.get("record_n_events"))
    inputs = {"const", "params", "direction", "n_events", "data"}
    for nid, (op, args, shape, event, attrs) in enumerate(header["nodes"]):
        if op not in OPS and op not in inputs:
            raise ValueError(f"node {nid} has unknown op {op!r}")
        args, shape, attrs = tuple(args), tuple(shape), _tuplify(attrs)
        if any(not 0 <= a < nid for a in args):
            raise ValueError(f"node {nid} refers to a later or missing node")
        if op == "const":
            value = arrays[f"const_{nid}"]
            if value.dtype != np.float64 or value.shape != shape:
                raise ValueError(f"constant {nid} has the wrong type or shape")
            got = graph.const(value)
        else:
            if op not in inputs:
                # the op's own shape rule: indices in range, operands that fit (a crafted
                # file must not reach the kernels with bad indices)
                try:
                    want_shape, want_event, want_args = OPS[op].shape(graph, args, attrs)
                except Exception as e:
                    raise ValueError(f"node {nid} ({op}) does not fit its operands: {e}") from None
                if (tuple(want_shape) != shape or bool(want_event) != bool(event)
                        or tuple(want_args) != args):
                    raise ValueError(f"node {nid} ({op}) has the wrong shape")
            got = graph.add(op, args, shape, bool(event), attrs)
        if got != nid:
            raise ValueError(f"node {nid} duplicates node {got}")
    graph.params = header["params"]
    graph.direction = header["direction"]
    graph.n_events_id = header["n_events_id"]
    graph.data = {str(k): int(v) for k, v in header["data_nodes"].items()}
    if graph.params is None or graph.nodes[graph.params].op != "params":
        raise ValueError("the parameter input is missing")
    return graph
