"""Containers: layered images, the registry, base images without a registry, engines."""
