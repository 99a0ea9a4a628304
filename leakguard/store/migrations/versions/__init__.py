"""One file per schema revision, oldest first (``python -m leakguard.store revision -m ...``)."""
