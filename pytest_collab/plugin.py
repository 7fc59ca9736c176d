"""pytest-collab's pytest plugin (placeholder while the foundation lands)."""
