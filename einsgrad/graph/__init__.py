"""Layer 2, graph builders: the operations expressions are built from (``ops``), the
rewrite walk (``rewrite``), printing (``printing``), structural keys (``keys``) and the
static-shape einsum helpers rules share (``static``)."""
