"""Layer 7, show the work: ``explain`` renders the rules' derivations, ``check`` judges a
hand-derived formula, ``notation`` and ``index_form`` write matrix and index notation."""
