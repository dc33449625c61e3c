"""A Ray job that reports where its one task ran, submitted to a cluster's Jobs API with its
token: the head's driver schedules no work (num-cpus 0 there), so the task lands on a worker."""

import json
import shlex
import time

PROBE = """
import json, os, socket, ray
ray.init()
@ray.remote(num_cpus=0.5)
def where():
    return {"host": socket.gethostname(), "uid": os.getuid(), "gid": os.getgid()}
print("PROBE " + json.dumps(ray.get(where.remote())))
"""


GCS_PROBE = """
import json, os, subprocess, sys
code = ("import ray; ray.init(address=%r); print('CONNECTED', ray.cluster_resources())"
        % os.environ["RAY_ADDRESS"])
cases = {"wrong token": {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64},
         "no token": {"RAY_AUTH_MODE": "disabled"},
         "the cluster's token": {"RAY_AUTH_MODE": "token",
                                 "RAY_AUTH_TOKEN": os.environ.get("RAY_AUTH_TOKEN", "")}}
answers = {}
for case, settings in cases.items():
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")} | settings
    try:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=120)
        answers[case] = {"connected": "CONNECTED" in done.stdout, "code": done.returncode,
                         "error": done.stderr[-1500:]}
    except subprocess.TimeoutExpired:
        answers[case] = {"connected": False, "code": None, "error": "no answer within 120 s"}
print("PROBE " + json.dumps(answers))
"""


def run_probe_job(dashboard: str, token: str, timeout: float = 180) -> dict:
    """Submits the probe to `dashboard` (http://host:8265) and returns what the task reported;
    raises with the job's log if the job does not succeed."""
    return run_script_job(dashboard, token, PROBE, timeout)


def run_script_job(dashboard: str, token: str, script: str, timeout: float = 180) -> dict:
    """Runs a Python script as a Ray job and returns the JSON it printed after `PROBE `."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    jobs = JobSubmissionClient(dashboard, headers={"Authorization": f"Bearer {token}"})
    job = jobs.submit_job(entrypoint=f"python -c {shlex.quote(script)}")
    deadline = time.monotonic() + timeout
    status = jobs.get_job_status(job)
    while not status.is_terminal() and time.monotonic() < deadline:
        time.sleep(0.5)  # polling the job's status
        status = jobs.get_job_status(job)
    logs = jobs.get_job_logs(job)
    if status != JobStatus.SUCCEEDED:
        raise RuntimeError(f"Ray job {job} ended {status}:\n{logs[-3000:]}")
    (line,) = [line for line in logs.splitlines() if line.startswith("PROBE ")]
    return json.loads(line.removeprefix("PROBE "))
