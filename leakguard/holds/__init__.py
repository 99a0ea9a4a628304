"""Holds: durable storage of held mail, notices, release/discard workflow."""
