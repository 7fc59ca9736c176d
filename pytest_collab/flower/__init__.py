"""Federated learning with Flower as a capability: run any ``flwr run`` app on the lab.

::

    from pytest_collab import flower

    run = flower.run(collab, app="my_app/", server="server", clients="rpi", rounds=3)
    assert run.rounds[-1]["evaluate_accuracy"] > 0.8

Controller side only (no flwr import here): the device side is
``collab_devicekit.flower``, shipped to every device with the device kit. The report
section (:mod:`pytest_collab.flower.report`) registers on import of that module.
"""
from __future__ import annotations

from pytest_collab.flower.app import FlowerApp, FlowerAppError, load_app
from pytest_collab.flower.faults import ClientCrash, crash_client
from pytest_collab.flower.result import FlowerRun
from pytest_collab.flower.run import FlowerRunFailed, record_run, run

__all__ = ["ClientCrash", "crash_client", "FlowerApp", "FlowerAppError", "FlowerRun", "FlowerRunFailed", "load_app",
           "record_run", "run"]
