"""Subcommands of the ``leakguard`` console script (see ``leakguard.cli``)."""
