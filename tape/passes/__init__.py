"""Record-time passes over the tape IR.

``simplify`` runs as each node is created (algebraic identities, hoisting of parameter-only work
out of the event body); constant folding and hash-consing (common-subexpression elimination) live
in ``tape.ops.core.apply_ids`` and ``tape.ir.Graph.add``. ``dce`` keeps what the outputs need,
``segments`` splits it into prelude, chunked body passes and epilogues, and ``lower`` allocates
buffers and emits the flat instruction list the interpreter runs.
"""
