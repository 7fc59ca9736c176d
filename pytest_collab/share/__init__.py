"""Sharing experiments: bundles, resolved configuration, replay gates and run comparison."""
