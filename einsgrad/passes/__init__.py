"""Layer 6, passes: walks over the DAG that dispatch through the rule table: reverse and
forward mode (``autodiff``, ``calculus``), ``simplify``, program building and evaluation
(``program``, ``evaluate``, ``compile``), ``equivalence`` and derivation ``records``."""
