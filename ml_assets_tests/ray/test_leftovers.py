"""What the embedded Ray leaves after `ray.shutdown()` is ended, and nothing else is touched."""

import subprocess
import sys
import time

import psutil

from ml_assets.ray.leftovers import end_survivors, ray_descendants


def test_a_ray_worker_left_after_shutdown_is_killed_and_other_children_are_not():
    # A process titled as Ray titles its workers (`ray::<actor>`), which outlived its raylet.
    lingering = subprocess.Popen(["bash", "-c", "exec -a ray::TrainController sleep 600"])
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        deadline = time.monotonic() + 10
        while psutil.Process(lingering.pid).cmdline()[:1] != ["ray::TrainController"]:
            assert time.monotonic() < deadline, "bash never exec'd the titled process"
            time.sleep(0.05)  # polling the process's title, set by its exec
        found = ray_descendants()
        pids = {p.pid for p in found}
        assert lingering.pid in pids and bystander.pid not in pids
        killed = end_survivors(found, grace_s=0.5)
        assert killed == [f"sleep (pid {lingering.pid})"]
        assert lingering.wait(timeout=10) == -9
        assert bystander.poll() is None
    finally:
        for process in (lingering, bystander):
            process.kill()
            process.wait()
