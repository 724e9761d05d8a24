"""The conversion child gets the same process set-up as the worker (it inherits nothing)."""

import logging
from typing import Any

from plexzoom.core.child import ChildLimits, run_in_child
from plexzoom.worker.config import WorkerSettings


def _pyvips_log_level(report: Any) -> int:
    """Runs in the child: what the set-up left behind."""
    return logging.getLogger("pyvips").level


def test_the_child_runs_the_worker_set_up() -> None:
    """WorkerSettings' child_setup runs in the spawned child before the conversion."""
    options = WorkerSettings().convert_options()
    assert options.child is not None and options.child_setup is not None
    level = run_in_child(
        _pyvips_log_level, (), ChildLimits(), lambda *_: None, lambda: None, 0.1,
        options.child_setup,
    )  # fmt: skip
    assert level == logging.WARNING
    bare = run_in_child(_pyvips_log_level, (), ChildLimits(), lambda *_: None, lambda: None, 0.1)
    assert bare == logging.NOTSET  # the control: a child without the set-up
