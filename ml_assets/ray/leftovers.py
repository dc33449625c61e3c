"""The embedded Ray's processes that outlive `ray.shutdown()`.

Measured here under the Dagster daemon: after a successful step, a `ray::TrainController` worker
process (800 MB) stayed alive with its raylet gone, reparented to init, until the machine
rebooted. So the step records its process tree before the shutdown and ends what is left.
"""

from pathlib import Path

import psutil


def ray_descendants() -> list[psutil.Process]:
    """This process's descendants that are Ray's: its raylet, GCS, helpers and workers (named
    `ray::...`, or run from Ray's package). A test's or a user's other children are left alone."""
    import ray

    package = str(Path(ray.__file__).parent)
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            command = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if command.startswith("ray::") or package in command:
            found.append(process)
    return found


def end_survivors(processes: list[psutil.Process], grace_s: float = 5.0) -> list[str]:
    """Waits up to `grace_s` for the processes to exit, kills the rest, and names them."""
    alive = [p for p in processes if p.is_running()]
    _, stuck = psutil.wait_procs(alive, timeout=grace_s)
    killed = []
    for process in stuck:
        try:
            name = f"{process.name()} (pid {process.pid})"
            process.kill()
            killed.append(name)
        except psutil.NoSuchProcess:
            continue
    return killed
