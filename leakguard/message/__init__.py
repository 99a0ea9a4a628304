"""Parse once: raw bytes -> immutable ``Message`` view (see ``leakguard.types.Message``)."""
