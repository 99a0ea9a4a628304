"""leakguard: a pre-send email leak guard (SMTP relay)."""

__version__ = "0.1.0"
