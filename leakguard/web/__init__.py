"""Web pages (review of holds, administrators' view) served in the relay's event loop."""
