"""How `plexzoom-worker` calls Dramatiq for each role and setting."""

from plexzoom.serve import MAINTENANCE_QUEUE, ServeSettings, worker_arguments


def test_conversion_workers_consume_the_conversions_queue() -> None:
    settings = ServeSettings(processes=3, threads=2, worker_role="convert")
    arguments = worker_arguments(settings)
    assert arguments[:3] == ["plexzoom.worker.main", "--queues", "conversions"]
    assert arguments[arguments.index("--processes") + 1] == "3"
    assert arguments[arguments.index("--threads") + 1] == "2"


def test_the_maintenance_worker_is_one_process_on_no_queue() -> None:
    arguments = worker_arguments(ServeSettings(processes=4, worker_role="maintain"))
    assert arguments[arguments.index("--queues") + 1] == MAINTENANCE_QUEUE
    assert arguments[arguments.index("--processes") + 1] == "1"


def test_the_shutdown_timeout_reaches_dramatiq_in_milliseconds() -> None:
    arguments = worker_arguments(ServeSettings(worker_shutdown_timeout_s=14700))
    assert arguments[arguments.index("--worker-shutdown-timeout") + 1] == "14700000"
    default = worker_arguments(ServeSettings())
    assert default[default.index("--worker-shutdown-timeout") + 1] == "600000"
