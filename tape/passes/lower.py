"""Lowering: from graph nodes to the flat instruction list and buffer layout the interpreter runs.

Buffers are assigned by liveness (a slot is reused once its value is dead, and an elementwise op
may write over an input it consumes last), separately for the small arena (parameter-like values,
computed once per call) and the chunk arena (event values, one chunk of rows each). The chunk
arena therefore holds only the few event buffers alive at once, which is what keeps a chunk in
cache while the instructions walk over it.
"""
from collections import defaultdict

import numpy as np

from .. import _replay
from ..ops.core import OPS
from .dce import ALIASES, live_nodes, resolve_alias
from .segments import EVENT_REDUCTIONS, assign_stages

__all__ = ["lower"]

NF = _replay.FIELDS["nfields"]
K = _replay.KINDS
M_FULL, M_SCALAR, M_ROW = (_replay.MODES[k] for k in ("full", "scalar", "row"))
FL_EVENT, FL_EVENT_IN = _replay.FLAGS["event"], _replay.FLAGS["event_in"]
ELEMENTWISE = frozenset({"unary", "binary", "where", "polygamma", "muladd"})
INPUTS = frozenset({"const", "params", "direction", "n_events", "data"})


class _Arena:
    """Slots of one arena handed out by width and returned when their value dies."""

    def __init__(self):
        self.size = 0
        self.free = defaultdict(list)

    def take(self, width):
        if self.free[width]:
            return self.free[width].pop()
        off = self.size
        self.size += width
        return off

    def give(self, off, width):
        self.free[width].append(off)


def _mode(arg, node):
    if arg.event:
        return M_FULL
    if arg.size == 1:
        return M_SCALAR
    return M_ROW if node.event else M_FULL


def lower(graph, outputs, inputs):
    """Lower the part of `graph` that `outputs` need into a ``tape._replay.Program`` spec.

    `inputs` are the input-vector nodes (parameters, a direction) whose values ``Program.run``
    receives, concatenated in this order.
    """
    nodes = graph.nodes
    outputs = list(outputs)
    live = live_nodes(graph, outputs)
    stage = assign_stages(graph, live)
    root = {i: resolve_alias(graph, i) for i in live}
    for o in outputs:
        if nodes[o].event:
            raise ValueError("an output of the tape still has the event axis: reduce it "
                             "(e.g. np.sum over events) before returning")

    # -- blocks ---------------------------------------------------------------------------------
    n_pass = max([stage[i] // 2 for i in live if nodes[i].op in EVENT_REDUCTIONS], default=0)
    prelude = [i for i in live if stage[i] == 0 and _emits(nodes[i])]
    bodies, posts = [], []
    for k in range(1, n_pass + 1):
        reds = [i for i in live if stage[i] == 2 * k and nodes[i].op in EVENT_REDUCTIONS]
        body = set()
        stack = [a for r in reds for a in nodes[r].args]
        while stack:
            j = stack.pop()
            if j in body or not nodes[j].event:
                continue
            body.add(j)
            stack.extend(nodes[j].args)
        bodies.append(sorted([j for j in body if _emits(nodes[j])] + reds))
        posts.append([i for i in live if stage[i] == 2 * k and _emits(nodes[i])])

    # -- liveness -------------------------------------------------------------------------------
    # Linear positions: prelude, body 1, post 1, body 2, ... A parameter-like value used inside a
    # body stays alive to the end of that body (the body repeats for every chunk).
    seq = [("pre", i) for i in prelude]
    body_end = {}
    for k in range(n_pass):
        start = len(seq)
        seq += [("body", i) for i in bodies[k]]
        for p in range(start, len(seq)):
            body_end[p] = len(seq) - 1
        seq += [("post", i) for i in posts[k]]
    INF = len(seq) + 1
    last = {}          # non-event root -> last linear position
    ev_last = {}       # (body index, event root) -> last position within that body
    body_of = {}
    q = len(prelude)
    for k in range(n_pass):
        for j in range(len(bodies[k])):
            body_of[q + j] = k
        q += len(bodies[k]) + len(posts[k])
    for p, (where, i) in enumerate(seq):
        n = nodes[i]
        args = n.args
        if where == "post" and n.op in EVENT_REDUCTIONS:
            continue   # finalize reads the accumulators, not the event input
        for a in args:
            r = root[a]
            if nodes[r].event:
                ev_last[(body_of[p], r)] = p
            else:
                last[r] = max(last.get(r, -1), body_end.get(p, p))
    for o in outputs:
        last[root[o]] = INF

    # -- allocation and emission ----------------------------------------------------------------
    small, chunk = _Arena(), _Arena()
    bufs = []              # (kind, offset, width): kind 0 small, 1 chunk, 2 data
    buf_of_slot = {}
    small_init = {}
    slot = {}              # root node id -> buffer id
    permanent = set()

    def buffer(kind, off, width):
        key = (kind, off) if kind != 2 else (2, off, width)
        b = buf_of_slot.get(key)
        if b is None:
            b = len(bufs)
            bufs.append((kind, off, width))
            buf_of_slot[key] = b
        return b

    def new_small(width, perm=False):
        off = small.take(width) if not perm else _take_permanent(small, width)
        b = buffer(0, off, width)
        return b

    data_bufs = []
    data_names = sorted(graph.data, key=lambda nm: graph.data[nm])
    for name in data_names:
        nid = graph.data[name]
        b = buffer(2, len(data_bufs), nodes[nid].size)
        data_bufs.append((b, data_names.index(name)))
        slot[nid] = b
    # inputs and constants: permanent small slots
    for i in live:
        n = nodes[i]
        if n.op == "const" or n.op in ("params", "direction", "n_events"):
            b = new_small(max(1, n.size), perm=True)
            slot[i] = b
            permanent.add(i)
            if n.op == "const":
                off = bufs[b][1]
                small_init[off] = graph.consts[i].ravel()
    for nid in (graph.params, graph.direction):
        if nid is not None and nid not in slot:
            slot[nid] = new_small(max(1, nodes[nid].size), perm=True)
    nev = graph.input_n_events() if graph.n_events_id is None else graph.n_events_id
    if nev not in slot:
        slot[nev] = new_small(1, perm=True)

    code = []
    iarena, idx_off = [], {}     # index lists, and their offsets by key
    iarena_size = [0]
    reductions = [[] for _ in range(n_pass)]   # per pass: (partial buf, result offset, width, is_max)
    blocks = {"pre": [], "body": [[] for _ in range(n_pass)], "post": [[] for _ in range(n_pass)]}

    def idx_offset(idx, key=None):
        """Offset of the int list `idx` in the index arena, stored once per `key` (default: the
        list itself)."""
        key = idx if key is None else key
        off = idx_off.get(key)
        if off is None:
            arr = np.asarray(idx, dtype=np.int64)
            off = iarena_size[0]
            iarena.append(arr)
            iarena_size[0] += arr.size
            idx_off[key] = off
        return off

    freed = set()

    def release_small(r, p):
        if r in permanent or r in freed or nodes[r].event or r not in slot:
            return
        if last.get(r, INF) == p:
            freed.add(r)
            kind, off, w = bufs[slot[r]]
            small.give(off, w)

    for p, (where, i) in enumerate(seq):
        n = nodes[i]
        op = OPS[n.op]
        kname = op.kernel[0]
        args = [root[a] for a in n.args]
        k = body_of.get(p)
        out_block = blocks["pre"] if where == "pre" else blocks[where][k if k is not None else _post_index(p, prelude, bodies, posts)]
        if where == "body" and n.op in EVENT_REDUCTIONS:
            # The chunk's partial goes to a chunk buffer kept to the end of the body; the driver
            # combines the partials of all chunks into the node's (permanent) slot.
            a = args[0]
            w = max(1, n.size)
            part = buffer(1, chunk.take(w), w)
            res = new_small(w, perm=True)
            slot[i] = res
            permanent.add(i)
            reductions[k].append((part, bufs[res][1], w, int(n.op == "max_events")))
            second = slot[args[1]] if n.op == "dot_events" else 0
            out_block.append(_ins(K[n.op], 0, part, slot[a], second, 0, w, FL_EVENT_IN, 0, 0))
            _free_events(args, p, k, ev_last, slot, bufs, chunk, nodes)
            continue
        if where == "post" and n.op in EVENT_REDUCTIONS:
            continue
        # ordinary instruction: free dying inputs first when the kernel may work in place
        inplace = kname in ELEMENTWISE
        if inplace:
            if n.event:
                _free_events(args, p, k, ev_last, slot, bufs, chunk, nodes, same_width=n.size)
            else:
                for a in set(args):
                    if not nodes[a].event and nodes[a].size == n.size:
                        release_small(a, p)
        width = max(1, n.size)
        if n.event:
            b = buffer(1, chunk.take(width), width)
        else:
            b = new_small(width)
        slot[i] = b
        flags = FL_EVENT if n.event else 0
        if kname == "unary":
            ins = _ins(K["unary"], _replay.UNARY[op.kernel[1]], b, slot[args[0]], 0, 0, width, flags, 0, 0)
        elif kname == "binary":
            ma, mb = (_mode(nodes[a], n) for a in args)
            ins = _ins(K["binary"], _replay.BINARY[op.kernel[1]], b, slot[args[0]], slot[args[1]], 0,
                       width, flags | ma << 2 | mb << 4, 0, 0)
        elif kname == "where":
            mc, ma, mb = (_mode(nodes[a], n) for a in args)
            ins = _ins(K["where"], 0, b, slot[args[0]], slot[args[1]], slot[args[2]], width,
                       flags | mc << 2 | ma << 4 | mb << 6, 0, 0)
        elif kname == "muladd":
            ma, mb, mc = (_mode(nodes[a], n) for a in args)
            ins = _ins(K["muladd"], 0, b, slot[args[0]], slot[args[1]], slot[args[2]], width,
                       flags | ma << 2 | mb << 4 | mc << 6, 0, 0)
        elif kname == "polygamma":
            ins = _ins(K["polygamma"], 0, b, slot[args[0]], 0, 0, width, flags, n.attrs[0], 0)
        elif kname in ("sum_seg", "max_seg"):
            ins = _ins(K[kname], 0, b, slot[args[0]], 0, 0, width, flags, n.attrs[0], 0)
        elif kname == "concat":
            pieces = []
            for a in args:
                pieces += [slot[a], nodes[a].size]
            ins = _ins(K["concat"], 0, b, 0, 0, 0, width, flags, idx_offset(tuple(pieces)), len(args))
        elif kname == "polyval":
            at = idx_offset(n.attrs[0]) if n.attrs else -1
            ins = _ins(K["polyval"], 0, b, slot[args[0]], slot[args[1]], nodes[args[1]].size,
                       width, flags, nodes[n.args[0]].shape[0], at)
        elif kname == "spmv":
            x_n = nodes[args[1]]
            ins = _ins(K["spmv"], x_n.size, b, slot[args[0]], slot[args[1]], 0, width, flags,
                       idx_offset(n.attrs[0]), idx_offset(n.attrs[1]))
        elif kname == "scatter_add" and len(n.attrs[0]) >= 2 * width:
            # many items per output: summed output by output (CSR: row pointers, then the items
            # of each row), no chains of dependent read-modify-writes through memory
            src = nodes[args[0]]
            fl = flags | (FL_EVENT_IN if src.event else 0)
            ins = _ins(K[kname], 1, b, slot[args[0]], 0, 0, width, fl,
                       idx_offset(_csr_of(n.attrs[0], width), ("csr", width, n.attrs[0])), src.size)
        elif kname in ("gather", "scatter_add", "scatter_prod"):
            src = nodes[args[0]]
            fl = flags | (FL_EVENT_IN if src.event else 0)
            ins = _ins(K[kname], 0, b, slot[args[0]], 0, 0, width, fl, idx_offset(n.attrs[0]),
                       src.size)
        elif kname == "matmul":
            a_n, b_n = nodes[n.args[0]], nodes[n.args[1]]   # shapes before alias resolution
            kdim, pdim = b_n.shape
            m = a_n.shape[0] if len(a_n.shape) == 2 else 1
            ins = _ins(K["matmul"], 0, b, slot[args[0]], slot[args[1]], 0, pdim, flags, kdim, m)
        else:
            raise NotImplementedError(f"no kernel for op {n.op}")
        if n.size:         # an empty array needs no instruction (its kernels assume n >= 1)
            out_block.append(ins)
        if n.event:
            _free_events(args, p, k, ev_last, slot, bufs, chunk, nodes)
            if (k, i) not in ev_last:   # computed but unused (should not happen): free now
                chunk.give(bufs[b][1], width)
        else:
            for a in set(args):
                release_small(a, p)

    # -- assemble ---------------------------------------------------------------------------------
    flat = list(blocks["pre"])
    pre = (0, len(flat))
    passes = []
    for k in range(n_pass):
        s0 = len(flat)
        flat += blocks["body"][k]
        s1 = len(flat)
        flat += blocks["post"][k]
        passes.append((s0, s1, s1, len(flat), reductions[k]))
    init = np.zeros(max(1, small.size))
    for off, vals in small_init.items():
        init[off:off + len(vals)] = vals
    outs = []
    for o in outputs:
        kind, off, w = bufs[slot[root[o]]]
        outs.append((off, nodes[o].size))
    code_arr = np.array(flat, dtype=np.int64).reshape(-1, NF)
    return {
        "small_size": small.size, "small_init": init, "event_row_size": chunk.size,
        "bufs": bufs, "code": code_arr,
        "iarena": np.concatenate(iarena) if iarena else np.zeros(0, dtype=np.int64),
        "prelude": pre, "passes": passes,
        "inputs": [(bufs[slot[nid]][1], nodes[nid].size) for nid in inputs],
        "nev_off": bufs[slot[nev]][1], "outputs": outs, "data_bufs": data_bufs,
        "data_names": data_names,
        "stats": {"prelude": len(blocks["pre"]),
                  "body": [len(b) for b in blocks["body"]],
                  "post": [len(b) for b in blocks["post"]]},
    }


def _csr_of(idx, n):
    """Row pointers (n + 1) and the items of each row in order, for scatter-add into n outputs."""
    idx = np.asarray(idx, dtype=np.int64)
    order = np.argsort(idx, kind="stable")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(idx, minlength=n))])
    return tuple(int(i) for i in ptr) + tuple(int(i) for i in order)


def _take_permanent(arena, width):
    off = arena.size
    arena.size += width
    return off


def _emits(node):
    return node.op not in INPUTS and node.op not in ALIASES


def _post_index(p, prelude, bodies, posts):
    q = len(prelude)
    for k in range(len(bodies)):
        q += len(bodies[k])
        if p < q + len(posts[k]):
            return k
        q += len(posts[k])
    raise AssertionError("position outside every block")


def _free_events(args, p, k, ev_last, slot, bufs, chunk, nodes, same_width=None):
    for a in set(args):
        if not nodes[a].event or nodes[a].op == "data":
            continue
        if ev_last.get((k, a)) == p:
            kind, off, w = bufs[slot[a]]
            if same_width is not None and w != max(1, same_width):
                continue
            if kind == 1:
                chunk.give(off, w)
                ev_last[(k, a)] = -1   # freed once


def _ins(kind, fn, out, a, b, c, n, flags, x1, x2):
    return [kind, fn, out, a, b, c, n, flags, x1, x2]
