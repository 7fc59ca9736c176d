"""The Flower report figures (they apply by the columns present; see pytest_collab.flower.report)."""
import pytest_collab.flower.report  # noqa: F401  -- registers on import
