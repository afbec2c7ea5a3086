"""Dead-code elimination: keep only the nodes the requested outputs depend on."""

__all__ = ["live_nodes", "ALIASES", "resolve_alias"]

# Ops that share their input's buffer and emit no instruction.
ALIASES = frozenset({"reshape", "stop_gradient"})


def live_nodes(graph, outputs):
    """Sorted ids of the nodes that `outputs` depend on (topological order)."""
    return graph.ancestors(list(outputs))


def resolve_alias(graph, nid):
    """The node whose buffer `nid` shares (itself unless it is a reshape/stop_gradient)."""
    nodes = graph.nodes
    while nodes[nid].op in ALIASES:
        nid = nodes[nid].args[0]
    return nid
