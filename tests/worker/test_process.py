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


def _s3_session_ready(report: Any) -> bool:
    """Runs in the child: whether boto3's default session (with its S3 model) exists."""
    import boto3

    return boto3.DEFAULT_SESSION is not None


def test_an_s3_worker_child_has_the_s3_model_loaded_before_its_job() -> None:
    """With S3 storage the set-up loads botocore's S3 model, so a job does not wait for it."""
    options = WorkerSettings(s3_bucket="images").convert_options()
    assert options.child_setup is not None
    args = ((), ChildLimits(), lambda *_: None, lambda: None, 0.1)
    assert run_in_child(_s3_session_ready, *args, options.child_setup) is True
    local = WorkerSettings(s3_bucket=None).convert_options()
    assert run_in_child(_s3_session_ready, *args, local.child_setup) is False  # the control
