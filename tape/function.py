"""Function: a recorded tape ready to replay its value, gradient and directional derivatives.

A Function owns the recorded graph (shared, read-only, between a Function and the copies made by
``with_data``), lowers it lazily into one program per kind of result (value; value and gradient;
value and a directional derivative), and binds each program to the data arrays. Calls from
several threads are serialized per Function, since a program reuses its buffers on every call.
"""
import re
import threading

import numpy as np

from . import _replay
from .autodiff import backward, forward
from .data import check_data
from .errors import DataError
from .passes.lower import lower
from .tracer import Tracer

__all__ = ["Function", "chunk_rows_for"]

# Default chunk arena size: the event buffers alive at once stay within about the L1 data cache
# (48 KiB per core here). Retuned after the arithmetic became inline SIMD kernels, which made
# the replay bound by memory traffic more than by dispatch: on the tutorial model, from 128 KiB
# and 1024-2048 rows to 48 KiB and 512-2048 rows, value_and_grad 0.60-0.67 -> 0.54-0.58 ms at
# 1e5 events and 6.7-6.8 -> 5.5-5.7 ms at 1e6, the Hessian 2.0-2.1 -> 1.8-1.9 ms and
# 20.6-20.9 -> 19.4-20.0 ms, the value unchanged (2048 rows); two threads at 1e6 likewise.
# Below 512 rows dispatching each instruction starts to show (256 rows: no faster, 128 slower).
DEFAULT_CHUNK_BYTES = 48 * 1024
# Big programs (Hessians) still get chunks long enough that dispatching an instruction costs
# little next to running it over the chunk; small ones gain nothing from longer chunks.
MIN_ROWS, MAX_ROWS = 512, 2048
# Hessian columns computed by one program (one pass over the events).
HESSIAN_BLOCK = 16
# At most this many events, a Hessian of more than HESSIAN_BLOCK parameters is a loop of hvps.
HVP_LOOP_MAX_EVENTS = 4096
# That loop takes one hvp per group of structurally independent columns (tape.sparsity) when this
# saves at least a fifth of the products (3L resonance: 124 products for 623 parameters).
SPARSE_MAX_FRACTION = 0.8
# A subsampled Function (``Function.subsample``) replays every stride-th block of this many rows;
# its programs use chunks that divide the block, so that all of them visit the same events.
SUBSAMPLE_BLOCK = 1024


def _parse_bytes(limit):
    if isinstance(limit, (int, np.integer)):
        return int(limit)
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kKmMgG]i?)?[bB]?\s*", str(limit))
    if not m:
        raise ValueError(f"memory_limit {limit!r} is not a size like 268435456, '256MB' or '1GiB'")
    scale = {None: 1, "k": 1e3, "m": 1e6, "g": 1e9, "ki": 2**10, "mi": 2**20, "gi": 2**30}
    return int(float(m.group(1)) * scale[m.group(2).lower() if m.group(2) else None])


def chunk_rows_for(event_row_size, chunk_size=None, memory_limit=None, threads=1):
    """Rows per chunk: `chunk_size` if given; else the cache-sized default, lowered if needed
    so that the chunk buffers of all `threads` fit `memory_limit`.

    `event_row_size` is the number of float64 event buffers the program keeps per row. A memory
    limit is an upper bound, not a target: chunks larger than the cache would only be slower.
    """
    row_bytes = 8 * max(1, event_row_size)
    if chunk_size is not None:
        if int(chunk_size) != chunk_size or chunk_size <= 0:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        return int(chunk_size)
    rows = DEFAULT_CHUNK_BYTES // row_bytes
    rows = int(max(MIN_ROWS, min(MAX_ROWS, rows // 64 * 64 or MIN_ROWS)))
    if memory_limit is not None:
        # per thread, an arena of (rows + pad) doubles per buffer, plus alignment slack
        limit = _parse_bytes(memory_limit) // max(1, threads) - 64
        pad = _replay.ARENA_ROW_PAD
        if limit < row_bytes * (1 + pad):
            raise ValueError(f"memory_limit {memory_limit!r} is smaller than the buffers of one "
                             f"event ({row_bytes * (1 + pad) + 64} bytes with their padding)")
        rows = max(1, min(rows, limit // row_bytes - pad))
    return rows


class Function:
    """A recorded scalar function of a parameter vector, replayed in compiled code.

    Made by ``tape.record``. Calling it gives the value; ``grad``/``value_and_grad`` add the exact
    reverse-mode gradient; ``jvp`` a directional derivative by forward mode.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = np.array([1.0, 2.0, 3.0])
    >>> f = tape.record(lambda p, x: np.sum((x - p[0]) ** 2), [0.0], data={"x": x})
    >>> f([2.0]), f.grad([3.0])
    (2.0, array([6.]))
    """

    def __init__(self, graph, out, data, n_events, chunk_size=None, memory_limit=None,
                 _shared=None, _stride=1):
        self._graph = graph
        self._out = out
        self._data = data if data is not None else {}
        self._n_events = n_events
        self._chunk_size = chunk_size
        self._memory_limit = memory_limit
        # Lowered programs depend on the graph only: shared with with_data copies.
        self._shared = _shared if _shared is not None else {"specs": {}, "lock": threading.Lock()}
        self._programs = {}
        self._lock = threading.Lock()
        self._n = graph.nodes[graph.params].size
        self._stride = _stride
        chunk_rows_for(1, chunk_size, memory_limit)   # validate early

    # -- properties -------------------------------------------------------------------------------
    @property
    def n_params(self):
        """Length of the parameter vector."""
        return self._n

    @property
    def n_events(self):
        """Number of events in the bound data."""
        return self._n_events

    @property
    def data(self):
        """The bound data arrays (read-only views)."""
        out = {}
        for k, v in self._data.items():
            view = v.view()
            view.setflags(write=False)
            out[k] = view
        return out

    def stats(self, kind="value"):
        """Instruction counts of the lowered program `kind` ('value', 'grad', 'jvp', 'hvp',
        or ('hessian', first column, end column))."""
        return dict(self._spec(kind)["stats"], chunk_rows=self._program(kind).chunk_rows)

    # -- lowering ---------------------------------------------------------------------------------
    def _spec(self, kind):
        specs = self._shared["specs"]
        spec = specs.get(kind)
        if spec is None:
            with self._shared["lock"]:
                spec = specs.get(kind)
                if spec is None:
                    spec = self._lower(kind)
                    specs[kind] = spec
        return spec

    def _lower(self, kind):
        g = self._graph
        n = self._n
        if kind == "value":
            return lower(g, [self._out], [g.params])
        if kind == "grad":
            return lower(g, [self._out, self._grad_node()], [g.params])
        if kind == "hvp":
            d = g.input_direction(n)
            (tid,) = forward(g, [self._grad_node()], {g.params: d})
            return lower(g, [self._as_vector(tid)], [g.params, d])
        if kind[0] == "hessian":
            gid = self._grad_node()
            comps = self._grad_components()
            # ("hessian", j0, j1, True): the value and the gradient first, from the same pass
            cols = [self._out, gid] if kind[3:4] == (True,) else []
            for j in range(kind[1], kind[2]):
                seed = g.const(np.eye(n)[j])
                if comps is None:
                    (tid,) = forward(g, [gid], {g.params: seed})
                    cols.append(self._as_vector(tid))
                    continue
                # by symmetry only rows 0..j of column j: the tangent work that feeds only the
                # rows below the diagonal is never recorded
                live = [c for c in comps[:j + 1] if c is not None]
                tangents = dict(zip(live, forward(g, live, {g.params: seed}))) if live else {}
                cols.append(self._column([tangents.get(c) for c in comps[:j + 1]]))
            return lower(g, cols, [g.params])
        if kind == "jvp":
            d = g.input_direction(n)
            (tid,) = forward(g, [self._out], {g.params: d})
            if tid is None:
                tid = g.const(0.0)
            return lower(g, [self._out, tid], [g.params, d])
        raise ValueError(kind)

    def _grad_node(self):
        """The node of the gradient vector (recorded once, shared by every derived program)."""
        gid = self._shared.get("grad")
        if gid is None:
            (gid,) = backward(self._graph, self._out, [self._graph.params])
            gid = self._as_vector(gid)
            self._shared["grad"] = gid
        return gid

    def _grad_components(self):
        """The gradient's components as scalar nodes, or None.

        The adjoint of the parameter vector is a sum of single-element scatter-adds when the
        function takes its parameters apart (``mu, sigma = p``): then each component is a node
        of its own, and a Hessian column can ask for some rows only.
        """
        if "grad_components" not in self._shared:
            g, n = self._graph, self._n
            parts = {}
            stack = [self._grad_node()]
            comps = []
            while stack:
                node = g.nodes[stack.pop()]
                if node.op == "add" and node.shape == (n,):
                    stack.extend(node.args)
                elif (node.op == "scatter_add" and len(node.attrs[0]) == 1
                      and g.nodes[node.args[0]].size == 1):
                    parts.setdefault(node.attrs[0][0], []).append(node.args[0])
                else:
                    comps = None
                    break
            if comps is not None:
                from . import math as T
                for k in range(n):
                    terms = [Tracer(g, i) for i in parts.get(k, [])]
                    total = terms[0] if terms else None
                    for t in terms[1:]:
                        total = total + t
                    comps.append(None if total is None else T.reshape_trailing(total, ()).id)
            self._shared["grad_components"] = comps
        return self._shared["grad_components"]

    def _components(self):
        """``_grad_components`` from outside the lowering (which holds the shared lock)."""
        comps = self._shared.get("grad_components", False)
        if comps is False:
            with self._shared["lock"]:
                comps = self._grad_components()
        return comps

    def _column(self, rows):
        """A vector node from scalar nodes (None: zero)."""
        from . import math as T
        g = self._graph
        parts = [np.zeros(1) if r is None else T.reshape_trailing(Tracer(g, r), (1,))
                 for r in rows]
        if all(isinstance(x, np.ndarray) for x in parts):
            return g.const(np.zeros(len(rows)))
        return T.concatenate(parts).id

    def _as_vector(self, gid):
        from . import math as T
        g = self._graph
        if gid is None:
            return g.const(np.zeros(self._n))
        return T.broadcast_trailing(Tracer(g, gid), (self._n,)).id

    def _program(self, kind):
        prog = self._programs.get(kind)
        if prog is None:
            spec = self._spec(kind)
            rows = chunk_rows_for(spec["event_row_size"], self._chunk_size, self._memory_limit,
                                  _replay.get_num_threads())
            missing = [name for name in spec["data_names"] if name not in self._data]
            if missing:
                raise DataError(f"this Function has no data bound for {missing} (it was saved "
                                "without its data): bind events with f.with_data(...)")
            data = [self._data[name] for name in spec["data_names"]]
            if self._stride > 1:
                # a power of two (so it divides the block), at most what the memory limit allows
                rows = 1 << (min(rows, SUBSAMPLE_BLOCK).bit_length() - 1)
            prog = _replay.Program(spec, data, self._n_events, rows)
            if self._stride > 1:
                prog.set_subsample(self._stride, SUBSAMPLE_BLOCK)
            self._programs[kind] = prog
        return prog

    def _run(self, kind, x, size):
        prog = self._programs.get(kind) or self._program(kind)
        out = np.empty(size)
        with self._lock:
            prog.run(x, out)
        return out

    def _params(self, p):
        if type(p) is not np.ndarray or p.dtype != np.float64 or not p.flags.c_contiguous:
            p = np.ascontiguousarray(p, dtype=np.float64)
        if p.shape != (self._n,):
            raise ValueError(f"expected a parameter vector of length {self._n}, got shape {p.shape}")
        return p

    # -- evaluation -------------------------------------------------------------------------------
    def __call__(self, p):
        """The value at parameters `p` (a float)."""
        prog = self._programs.get("value") or self._program("value")
        p = self._params(p)
        with self._lock:
            return prog.value(p)

    def value_and_grad(self, p):
        """(value, gradient) at `p` from one replay of the value-and-gradient program."""
        out = self._run("grad", self._params(p), 1 + self._n)
        return float(out[0]), out[1:]

    def grad(self, p):
        """The exact gradient at `p` (reverse mode), an array of length ``n_params``."""
        return self.value_and_grad(p)[1]

    def jvp(self, p, v):
        """The directional derivative of the value at `p` along `v` (forward mode), a float."""
        p = self._params(p)
        v = np.ascontiguousarray(v, dtype=np.float64)
        if v.shape != (self._n,):
            raise ValueError(f"direction must have length {self._n}, got shape {v.shape}")
        return float(self._run("jvp", np.concatenate([p, v]), 2)[1])

    def hvp(self, p, v):
        """Hessian-vector product H(p) @ v by forward-over-reverse (exact), an array."""
        p = self._params(p)
        v = np.ascontiguousarray(v, dtype=np.float64)
        if v.shape != (self._n,):
            raise ValueError(f"direction must have length {self._n}, got shape {v.shape}")
        return self._run("hvp", np.concatenate([p, v]), self._n)

    @property
    def has_hessian(self):
        """Whether iminuit may pick ``hessian`` up by itself (see ``tape.fit.hessian_layout``)."""
        from .fit import hessian_layout
        return hessian_layout() == "full"

    def hessian(self, p, *, method=None):
        """The exact Hessian at `p`, a symmetric (n, n) array (forward-over-reverse).

        Two ways to the same numbers (they differ by rounding only):

        - ``"blocks"``: each block of up to ``HESSIAN_BLOCK`` columns is one program, a tangent
          sweep per unit direction over the gradient tape (zero tangents pruned at record time),
          replayed in one pass over the events. Fastest per call; building the programs costs
          about 10 ms of Python per column on a large tape.
        - ``"hvp"``: one Hessian-vector product per column with the ``hvp`` program (built once,
          like a single column). Per call it redoes the forward and reverse sweeps for every
          column, which is cheap when there are few events.
        - ``"sparse"``: as ``"hvp"``, one product per group of columns that share no non-zero
          row in the Hessian's structural pattern (``tape.sparsity``, read off the tape once),
          plus one per column of the densest rows. Exact, as the others.

        The default (`method` None) takes ``"hvp"`` for more than ``HESSIAN_BLOCK`` parameters
        on at most ``HVP_LOOP_MAX_EVENTS`` events (binned likelihoods: a 623-parameter
        HistFactory model builds in 0.03 s instead of 6 s), ``"sparse"`` instead where that
        needs at most ``SPARSE_MAX_FRACTION`` of the products, else ``"blocks"``.
        """
        p = self._params(p)
        n, k = self._n, HESSIAN_BLOCK
        if method is None:
            method = "blocks" if self._blocks_by_default() else "hvp"
            if method == "hvp":
                plan = self._sparse_plan()
                if plan is not None and plan.products <= SPARSE_MAX_FRACTION * n:
                    method = "sparse"
        if method == "sparse":
            plan = self._sparse_plan()
            if plan is None:
                raise ValueError("method='sparse': the Hessian's pattern cannot be read off this "
                                 "tape (an op without a sparsity rule, or too large)")
            prog = self._programs.get("hvp") or self._program("hvp")
            with self._lock:
                h = plan.hessian(prog, p)
            return 0.5 * (h + h.T)
        h = np.empty((n, n))
        if method == "hvp":
            prog = self._programs.get("hvp") or self._program("hvp")
            x = np.concatenate([p, np.zeros(n)])
            with self._lock:
                for j in range(n):
                    x[n + j] = 1.0
                    prog.run(x, h[j])
                    x[n + j] = 0.0
        elif method == "blocks":
            return self._hessian_blocks(p)[2]
        else:
            raise ValueError(f"method must be 'blocks', 'hvp', 'sparse' or None, got {method!r}")
        return 0.5 * (h + h.T)

    def _blocks_by_default(self):
        """Whether ``hessian`` takes block programs by default (else a loop of hvps: more than
        ``HESSIAN_BLOCK`` parameters on at most ``HVP_LOOP_MAX_EVENTS`` events)."""
        return self._n <= HESSIAN_BLOCK or self._n_events > HVP_LOOP_MAX_EVENTS

    @property
    def hessian_in_one_pass(self):
        """Whether ``value_grad_hessian`` takes a single pass over the events (at most
        ``HESSIAN_BLOCK`` parameters): then it costs about three gradients (tutorial model),
        and Newton takes the exact Hessian at every step near the minimum."""
        return self._n <= HESSIAN_BLOCK

    def value_grad_hessian(self, p):
        """(value, gradient, Hessian) at `p`; where the Hessian takes one pass over the events
        (the default for up to ``HESSIAN_BLOCK`` parameters), the value and the gradient come
        from that same pass: a Newton step needs all three, and they add 6 % to the pass
        (tutorial model at 1e5 events: 1.84 ms for the three, against 1.71 ms for a pass
        without them and 0.63 ms for a separate ``value_and_grad``; ``hessian`` replays the
        same program, so that only one is lowered).

        Examples
        --------
        >>> import numpy as np, tape
        >>> x = np.array([1.0, 2.0, 3.0])
        >>> f = tape.record(lambda p, x: np.sum((x - p[0]) ** 2 * p[1]), [0.0, 1.0], data={"x": x})
        >>> v, g, h = f.value_grad_hessian([1.0, 2.0])
        >>> float(v), g.tolist(), h.tolist()
        (10.0, [-12.0, 5.0], [[12.0, -6.0], [-6.0, 0.0]])
        """
        p = self._params(p)
        n = self._n
        if n == 0 or not self._blocks_by_default():
            v, g = self.value_and_grad(p)
            return v, g, self.hessian(p)
        return self._hessian_blocks(p)

    def _hessian_blocks(self, p):
        """(value, gradient, Hessian) by column blocks ("blocks"). The first block's program
        also gives the value and the gradient, for ``hessian`` too: one program to lower (37 ms
        on the tutorial model, the first fit's largest cost) for 6 % more per Hessian."""
        n, k = self._n, HESSIAN_BLOCK
        h = np.empty((n, n))
        v = g = None
        upper = self._components() is not None
        for j0 in range(0, n, k):
            j1 = min(n, j0 + k)
            size = (j1 * (j1 + 1) - j0 * (j0 + 1)) // 2 if upper else (j1 - j0) * n
            if j0 == 0:
                out = self._run(("hessian", j0, j1, True), p, 1 + n + size)
                v, g, out = float(out[0]), out[1:1 + n].copy(), out[1 + n:]
            else:
                out = self._run(("hessian", j0, j1), p, size)
            if not upper:
                h[j0:j1] = out.reshape(j1 - j0, n)
                continue
            # column j holds rows 0..j (the upper triangle); the rest by symmetry
            q = 0
            for j in range(j0, j1):
                h[:j + 1, j] = out[q:q + j + 1]
                h[j, :j] = out[q:q + j]
                q += j + 1
        if not upper:
            h = 0.5 * (h + h.T)
        return v, g, h

    def _sparse_plan(self):
        """The ``tape.sparsity.SparseHessian`` of this tape (found once, shared with copies
        made by ``with_data``), or None where its pattern is unknown."""
        if "sparse_plan" not in self._shared:
            with self._shared["lock"]:
                if "sparse_plan" not in self._shared:
                    from .sparsity import SparseHessian
                    self._shared["sparse_plan"] = SparseHessian.of(self._graph, self._out,
                                                                   self._n)
        return self._shared["sparse_plan"]

    # -- data -------------------------------------------------------------------------------------
    def with_data(self, **arrays):
        """A Function replaying the same tape on new data arrays (same names and row shapes).

        Nothing is recorded or lowered again.

        >>> import numpy as np, tape
        >>> f = tape.record(lambda p, x: np.sum(x * p[0]), [1.0], data={"x": np.ones(3)})
        >>> f.with_data(x=np.ones(5))([1.0])
        5.0
        """
        expected = {name: self._graph.nodes[nid].shape for name, nid in self._graph.data.items()}
        data, n = check_data(arrays, expected)
        return Function(self._graph, self._out, data, n, self._chunk_size, self._memory_limit,
                        _shared=self._shared, _stride=self._stride)

    @property
    def stride(self):
        """1, or the stride of a subsampled Function (see ``subsample``)."""
        return self._stride

    @property
    def replayed_events(self):
        """Number of events one replay visits: all of them, unless subsampled."""
        if self._stride == 1:
            return self._n_events
        return self._program("value").replayed_events

    def subsample(self, stride):
        """This Function on every `stride`-th block of 1024 events, its event sums scaled to all
        events: an estimate of the value and its derivatives at about 1/`stride` of the cost
        (a fit's seed needs no more). It is unbiased when the order of the events has nothing
        to do with the blocks; events sorted or concatenated by category are sampled
        systematically, and a category shorter than the stride's span can be missed. Terms
        outside the event sums (constraints, the Poisson term of an extended likelihood) are
        exact; ``n_events`` stays the total.

        Shares the data (no copy) and the lowered tapes; stride 1 gives the full Function, and
        the stride applies to the full data (``f.subsample(2).subsample(4)`` is
        ``f.subsample(4)``). Saved and pickled with it.

        Parameters
        ----------
        stride : int
            Every `stride`-th block of ``SUBSAMPLE_BLOCK`` = 1024 rows is replayed.

        Examples
        --------
        >>> import numpy as np, tape
        >>> x = np.ones(8192)
        >>> f = tape.record(lambda p, x: np.sum(x * p[0]), [1.0], data={"x": x})
        >>> s = f.subsample(4)
        >>> s.replayed_events, s([2.0])
        (2048, 16384.0)
        """
        if int(stride) != stride or stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride!r}")
        return Function(self._graph, self._out, self._data, self._n_events, self._chunk_size,
                        self._memory_limit, _shared=self._shared, _stride=int(stride))

    def _rebind(self, **arrays):
        """Replace this Function's data in place (its programs are kept): for loops such as toy
        studies that own the Function; users call ``with_data``, which leaves the original."""
        expected = {name: self._graph.nodes[nid].shape for name, nid in self._graph.data.items()}
        data, n = check_data(arrays, expected)
        with self._lock:
            self._data, self._n_events = data, n
            for kind, prog in self._programs.items():
                spec = self._spec(kind)
                prog.set_data([data[name] for name in spec["data_names"]], n)
        return self

    def __reduce__(self):
        from .persist import dumps, loads
        return (loads, (dumps(self),))

    def __repr__(self):
        names = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self._data.items())
        return f"<tape.Function n_params={self._n} data=[{names}] nodes={len(self._graph)}>"
