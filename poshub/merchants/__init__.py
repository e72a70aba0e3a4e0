"""merchants domain: the merchant record every later domain reads (MID, status)."""
