"""terminals domain."""
