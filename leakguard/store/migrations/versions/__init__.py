"""One file per schema revision, oldest first (``leakguard.store.migrate revision``)."""
