"""Route modules of the read API, one per area."""
