"""Algebraic simplification and hoisting, applied to each node before it is created.

Every rule returns a node of exactly the same shape and event flag as the one it replaces, or
``None`` to leave the node alone. The hoisting rules move parameter-only work out of the per-event
body: ``x / s`` with an event array ``x`` and a parameter-only ``s`` becomes ``x * (1/s)`` (the
reciprocal is computed once per call, and a multiply is cheaper per event than a divide), and
chains ``(x * a) * b`` / ``(x + a) + b`` fold their parameter-only factors together.

Products are reassociated as floating-point arithmetic strictly does not allow (as a compiler's
-ffast-math would): ``(x a) y -> (x y) a``, ``(x a)^2 -> x^2 a^2``. Each result differs from the
written order by rounding only, unless an intermediate product over- or underflows where the
written one would not (magnitudes beyond about 1e150), far from a likelihood's terms. Selections
(``where``) are never rewritten: their unselected branch must stay exactly zero.
"""
import numpy as np

__all__ = ["simplify"]


def _const_equal(graph, nid, value):
    v = graph.consts.get(nid)
    return v is not None and v.size > 0 and bool(np.all(v == value))


def _scalar_const(graph, nid):
    v = graph.consts.get(nid)
    if v is not None and v.size == 1:
        return float(v.reshape(()))
    return None


def simplify(graph, name, ids, attrs, shape, event):
    """Return the id of an existing/simpler node equal to (name, ids), or None."""
    from ..ops.core import apply_ids

    nodes = graph.nodes

    def same(i):
        n = nodes[i]
        return n.shape == shape and n.event == event

    def is_neg(i):
        return nodes[i].op == "neg"

    if name in ("add", "sub", "mul", "div", "pow"):
        a, b = ids
        if name == "add":
            if _const_equal(graph, b, 0.0) and same(a):
                return a
            if _const_equal(graph, a, 0.0) and same(b):
                return b
            if is_neg(b):                                   # a + (-c) -> a - c
                return apply_ids(graph, "sub", (a, nodes[b].args[0]))
            if is_neg(a):                                   # (-c) + b -> b - c
                return apply_ids(graph, "sub", (b, nodes[a].args[0]))
            r = _reassociate(graph, "add", a, b)
            if r is not None:
                return r
            for m, c in ((a, b), (b, a)):                   # x * y + c in one pass
                if nodes[m].op == "mul" and same(m):
                    return apply_ids(graph, "muladd", nodes[m].args + (c,))
            return None
        if name == "sub":
            if _const_equal(graph, b, 0.0) and same(a):
                return a
            if _const_equal(graph, a, 0.0) and same(b):
                return apply_ids(graph, "neg", (b,))
            if is_neg(b):                                   # a - (-c) -> a + c
                return apply_ids(graph, "add", (a, nodes[b].args[0]))
            if nodes[a].op == "mul" and nodes[a].event and same(a) and not nodes[b].event \
                    and nodes[b].size == 1:
                # x * y - c in one pass per event (the negation of c is computed once per call)
                return apply_ids(graph, "muladd", nodes[a].args + (apply_ids(graph, "neg", (b,)),))
            return None
        if name == "mul":
            for x, y in ((a, b), (b, a)):
                if _const_equal(graph, y, 1.0) and same(x):
                    return x
                if _const_equal(graph, y, -1.0) and same(x):
                    return apply_ids(graph, "neg", (x,))
            # move a negation onto the parameter-like factor: computed once, not per event;
            # between two event arrays, outwards (towards a factor or a sum that absorbs it)
            for x, y in ((a, b), (b, a)):
                if is_neg(x) and nodes[x].event and not nodes[y].event:
                    return apply_ids(graph, "mul", (nodes[x].args[0], apply_ids(graph, "neg", (y,))))
                if is_neg(x) and nodes[y].event and same(nodes[x].args[0]) and same(y):
                    return apply_ids(graph, "neg", (apply_ids(graph, "mul", (nodes[x].args[0], y)),))
            r = _reassociate(graph, "mul", a, b)
            if r is not None:
                return r
            return _sink_factor(graph, a, b)
        if name == "div":
            if _const_equal(graph, b, 1.0) and same(a):
                return a
            if nodes[b].event or not nodes[a].event:
                if nodes[b].event:
                    # one reciprocal per event denominator, shared by every division by it
                    # (the derivative tapes divide by the same value many times)
                    return apply_ids(graph, "mul", (a, apply_ids(graph, "reciprocal", (b,))))
                return None
            return apply_ids(graph, "mul", (a, apply_ids(graph, "reciprocal", (b,))))
        if name == "pow":
            c = _scalar_const(graph, b)
            if c is None or not same(a):
                return None
            if c == 1.0:
                return a
            rewrite = {2.0: "square", 0.5: "sqrt", -1.0: "reciprocal"}.get(c)
            if rewrite:
                return apply_ids(graph, rewrite, (a,))
            return None
    if name == "log":
        # log(maximum(x, c)), a constant c > 0 (a floored log density): one op, whose derivative
        # 1/x above the floor needs no selection per direction (see floor_log)
        n = nodes[ids[0]]
        if n.op == "maximum":
            for x, c in (n.args, n.args[::-1]):
                v = _scalar_const(graph, c)
                if v is not None and v > 0 and same(x):
                    return apply_ids(graph, "floor_log", (x, c))
    if name == "square":
        # (e p)^2 -> e^2 p^2: the scalar's square once per call, and e^2 shared by every scale
        s = _scaled(graph, ids[0])
        if s is not None:
            e, p = s
            return apply_ids(graph, "mul", (apply_ids(graph, "square", (e,)),
                                            apply_ids(graph, "square", (p,))))
    if name == "neg":
        n = nodes[ids[0]]
        if n.op == "neg":
            return n.args[0]
        if n.op == "mul" and n.event:                       # -(x * c) -> x * (-c)
            u, v = n.args
            for x, y in ((u, v), (v, u)):
                if not nodes[y].event and nodes[x].shape == n.shape and nodes[x].event:
                    return apply_ids(graph, "mul", (x, apply_ids(graph, "neg", (y,))))
    if name == "sum_events":
        n = nodes[ids[0]]
        if n.op == "neg":                                   # sum(-x) -> -sum(x), once per call
            return apply_ids(graph, "neg", (apply_ids(graph, "sum_events", (n.args[0],)),))
        if n.op == "mul":
            u, v = n.args
            for x, y in ((u, v), (v, u)):
                # a parameter-like factor comes out of the event sum: sum(x c) = sum(x) c
                if nodes[x].event and not nodes[y].event and nodes[x].shape == n.shape:
                    return apply_ids(graph, "mul", (apply_ids(graph, "sum_events", (x,)), y))
            if nodes[u].event and nodes[v].event and nodes[u].shape == nodes[v].shape == n.shape:
                return apply_ids(graph, "dot_events", (u, v))
    if name == "dot_events":
        a, b = ids
        for x, y in ((a, b), (b, a)):
            n = nodes[x]
            if n.op == "neg" and nodes[n.args[0]].event:    # sum(-x y) -> -sum(x y)
                return apply_ids(graph, "neg", (apply_ids(graph, "dot_events", (n.args[0], y)),))
            if n.op == "mul":                               # sum(x c y) -> sum(x y) c
                u, v = n.args
                for e, c in ((u, v), (v, u)):
                    if nodes[e].event and not nodes[c].event and nodes[e].shape == n.shape:
                        return apply_ids(graph, "mul",
                                         (apply_ids(graph, "dot_events", (e, y)), c))
        if a > b:                                           # one node for sum(x y) and sum(y x)
            return apply_ids(graph, "dot_events", (b, a))
    return None


def _scaled(graph, x):
    """(e, p) when node `x` is ``e * p`` with an event `e` of x's shape and a parameter-only
    scalar `p`, else None."""
    nodes = graph.nodes
    nx = nodes[x]
    if nx.op != "mul" or not nx.event:
        return None
    u, v = nx.args
    for e, p in ((u, v), (v, u)):
        if nodes[e].event and nodes[e].shape == nx.shape and not nodes[p].event \
                and nodes[p].size == 1:
            return e, p
    return None


def _sink_factor(graph, a, b):
    """(e p) y -> (e y) p for event arrays: parameter-only scalar factors move outwards.

    Derivative tapes multiply chains of event arrays each scaled by a constant or a parameter
    term; moving the scalars to the outside merges them into one per-call product (see
    ``_reassociate``) and lets an event sum take them out altogether (``sum(x c) = sum(x) c``),
    so they stop costing a pass over the events each.
    """
    from ..ops.core import apply_ids

    nodes = graph.nodes
    na, nb = nodes[a], nodes[b]
    if not (na.event and nb.event and na.shape == nb.shape):
        return None
    for x, y in ((a, b), (b, a)):
        s = _scaled(graph, x)
        if s is not None:
            e, p = s
            return apply_ids(graph, "mul", (apply_ids(graph, "mul", (e, y)), p))
    return None


def _reassociate(graph, name, a, b):
    """(x op p) op q -> x op (p op q) for an event x and parameter-only p, q: hoists p op q."""
    from ..ops.core import apply_ids

    nodes = graph.nodes
    for x, q in ((a, b), (b, a)):
        nx, nq = nodes[x], nodes[q]
        if nq.event or not nx.event or nx.op != name:
            continue
        u, v = nx.args
        for e, p in ((u, v), (v, u)):
            if nodes[e].event and not nodes[p].event and nodes[e].shape == nx.shape:
                if nodes[p].size == 1 and nq.size == 1:
                    return apply_ids(graph, name, (e, apply_ids(graph, name, (p, q))))
    return None
