"""Alembic migrations of the store (see ``leakguard.store.migrate``)."""
