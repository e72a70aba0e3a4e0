"""fieldwork domain."""
