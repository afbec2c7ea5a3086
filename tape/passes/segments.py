"""Split a live tape into segments: prelude, chunked body passes over events, and epilogues.

Stages are numbered so that even stages hold parameter-like nodes (run once per call) and odd
stages hold event nodes (run chunk by chunk):

- stage 0, the prelude: nodes that depend on parameters and constants only (normalization
  integrals and every other parameter-only expression are hoisted here automatically);
- stage 2k-1, body pass k: event nodes, replayed over chunks of events;
- stage 2k, epilogue k: what follows the k-th reductions over events.

An NLL (and its gradient, whose event adjoints only need the epilogue's constant seed) is one pass.
Something like a log-sum-exp over events, whose shift needs a full pass first, takes two.
"""
from ..errors import ShapeError

__all__ = ["EVENT_REDUCTIONS", "assign_stages"]

EVENT_REDUCTIONS = frozenset({"sum_events", "max_events", "dot_events"})


def assign_stages(graph, live):
    """{node id: stage} for the sorted node ids `live`."""
    nodes = graph.nodes
    stage = {}
    for i in live:
        n = nodes[i]
        if not n.args:
            stage[i] = 1 if n.event else 0
            continue
        s = max(stage[a] for a in n.args)
        if n.event:
            stage[i] = s if s % 2 else s + 1
        elif n.op in EVENT_REDUCTIONS:
            stage[i] = s + 1
        elif s % 2:
            raise ShapeError(f"internal: non-event node {n} computed from event nodes")
        else:
            stage[i] = s
    return stage
