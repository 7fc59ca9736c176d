"""The Flower report figures: they apply by the columns present (round rows with
accuracy/loss columns, client rows with train_time_s), so any Flower run gets them; see
pytest_collab.flower.report."""
import pytest_collab.flower.report  # noqa: F401  -- registers on import
