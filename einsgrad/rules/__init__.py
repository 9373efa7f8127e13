"""Layer 4, the rules: one module per family of node kinds, each ending in its kinds'
rows of the rule table (derivatives, lowering, printing, rebuilding, explain).

Importing this package registers every built-in row: a new family is one module here
and one line below.
"""

from einsgrad.rules import einsum, elementwise, leaves, reductions

__all__ = ["einsum", "elementwise", "leaves", "reductions"]
