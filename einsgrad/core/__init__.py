"""Layer 1, the core: the IR (``ir``), einsum spec strings (``spec``), the rule table
(``kinds``) and the data its rules exchange with the passes (``lowering``,
``derivation``, ``primitive``), errors, labels and limits. Imports nothing above it."""
