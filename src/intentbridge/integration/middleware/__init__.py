"""integration/middleware."""
