"""Layer 5, frontends: expressions from text, Python-like strings (``parse``) and
Einstein index notation (``index``), parsed with ``ast`` against a whitelist."""
