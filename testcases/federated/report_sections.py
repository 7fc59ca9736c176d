"""The Flower report figures: they apply by the columns present (round rows with
accuracy/loss columns, client rows with train_time_s), so any Flower run gets them; see
pytest_collab.flower.report."""
import pytest_collab.flower.report  # noqa: F401  -- registers on import

#: the summary table: one row per federated run (its "run" record), final accuracy first
HEADLINE = {"rows": {"kind": "run"}, "columns": ["clients", "alpha", "rounds"],
            "key": "final_accuracy", "also": ["final_loss", "run_time_s"], "distributions": []}
