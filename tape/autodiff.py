"""Derivatives as graph transformations: reverse sweep (``backward``) and tangents (``forward``).

Both walk the recorded graph and call each op's rules, which record new nodes on the same graph.
The derivative of a tape is therefore a tape: hash-consing shares the forward values it reuses,
``tape.passes`` optimize it, and the interpreter replays value and gradient in one program (in one
chunked pass over events when the output is a sum over events, as an NLL is).
Forward-over-reverse (Hessian-vector products) is ``forward`` applied to ``backward``'s output.
"""
import numpy as np

from . import math as T
from .ops.core import OPS
from .tracer import Tracer

__all__ = ["backward", "forward", "unbroadcast"]


def unbroadcast(c, arg, over_events=False):
    """Reduce contribution `c` (a Tracer) to the shape of node `arg`: sum broadcast axes.

    `over_events`: `arg` was broadcast over the event axis by an elementwise op, so `c` is a
    per-event contribution; a `c` without the event axis is the same for every event.
    """
    graph = c.graph
    an = graph.nodes[arg]
    if c.event and not an.event:
        c = T.apply("sum_events", c)
    elif over_events and not an.event:
        c = c * T.n_events(c)
    cs, ash = c.node.shape, an.shape
    if cs == ash:
        return c
    try:
        if tuple(np.broadcast_shapes(cs, ash)) == ash:
            return c   # smaller than the argument: stays an implicit broadcast
    except ValueError:
        pass
    lead = len(cs) - len(ash)
    axes = list(range(lead)) + [lead + j for j, d in enumerate(ash) if d == 1 and cs[lead + j] != 1]
    off = 1 if c.event else 0
    c = T.sum(c, axis=tuple(a + off for a in axes), keepdims=False)
    return T.reshape_trailing(c, ash)


def backward(graph, out, wrt):
    """Adjoints of scalar node `out` with respect to the nodes `wrt`, recorded on `graph`.

    Returns a list of node ids (or None where `out` does not depend on that node). An adjoint may
    be broadcast-smaller than its node (a scalar for a vector): the caller expands it if needed.
    """
    order = graph.ancestors([out])
    need = graph.dependents(list(wrt), order)
    if out not in need:
        return [None] * len(wrt)
    nodes = graph.nodes
    adj = {out: graph.const(np.ones(nodes[out].shape))}
    keep = set(wrt)
    for i in reversed(order):
        if i not in need or i not in adj:
            continue
        node = nodes[i]
        if not node.args:
            continue
        op = OPS[node.op]
        if op.vjp is None:
            continue
        g = Tracer(graph, adj[i] if i in keep else adj.pop(i))
        ans = Tracer(graph, i)
        args = [Tracer(graph, a) for a in node.args]
        for k, a in enumerate(node.args):
            rule = op.vjp[k]
            if a not in need or rule is None:
                continue
            over = node.event and op.kernel is not None and op.kernel[0] in ("binary", "where",
                                                                               "muladd")
            c = unbroadcast(rule(g, ans, *args, *node.attrs), a, over)
            adj[a] = c.id if a not in adj else T.add(Tracer(graph, adj[a]), c).id
    return [adj.get(w) for w in wrt]


def forward(graph, outs, tangents):
    """Tangents of the nodes `outs` given `tangents` ({input node id: tangent node id}).

    Returns a list of node ids (None where the output does not depend on the seeded inputs).
    Constant seeds (unit vectors, for Hessian columns) fold through the tape, and tangents that
    fold to zero are dropped.
    """
    order = graph.ancestors(list(outs))
    nodes = graph.nodes
    tan = dict(tangents)
    for i in order:
        if i in tan:
            continue
        node = nodes[i]
        if not node.args:
            continue
        op = OPS[node.op]
        if op.jvp is None or not any(a in tan for a in node.args):
            continue
        ans = Tracer(graph, i)
        args = [Tracer(graph, a) for a in node.args]
        total = None
        for k, a in enumerate(node.args):
            rule = op.jvp[k]
            if a not in tan or rule is None:
                continue
            c = rule(Tracer(graph, tan[a]), ans, *args, *node.attrs)
            total = c if total is None else total + c
        if total is not None and not _is_zero(graph, total.id):
            tan[i] = total.id
    return [tan.get(o) for o in outs]


def _is_zero(graph, nid):
    """A constant all-zero tangent is a symbolic zero: dropping it prunes whole tangent paths."""
    v = graph.consts.get(nid)
    return v is not None and not v.any()
