"""The checkpoint a resumed training run would start from, and whether it can be trusted.

Ray Train restores the latest checkpoint named in the run directory's manager snapshot. A file
cut short by a lost node, a directory someone cleaned up, or weights that went NaN would resume
into an error deep inside a worker, or worse into a garbage model. So the driver looks first:
an unusable checkpoint is reported with its reason, the run directory is set aside (kept for a
post-mortem, never deleted) and training restarts from scratch. A checkpoint whose weights or
optimizer groups no longer fit what this code builds (a step retried after a redeploy that
changed the model) is unusable too: resuming it would fail inside the worker, not heal.
"""

import json
import time
from pathlib import Path

import torch

from ml_assets.storage import move_tree
from ml_assets.training.task import TrainingTask

CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.json"
SNAPSHOT_FILE = "checkpoint_manager_snapshot.json"  # Ray Train's record of its checkpoints
REQUIRED_KEYS = ("model", "optimizer", "epoch", "history")


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint Ray Train would restore: the snapshot's latest, else the newest on disk."""
    snapshot = run_dir / SNAPSHOT_FILE
    if snapshot.exists():
        try:
            latest = json.loads(snapshot.read_text()).get("latest_checkpoint_result") or {}
        except json.JSONDecodeError:
            latest = {}
        if latest.get("checkpoint_dir_name"):
            return run_dir / latest["checkpoint_dir_name"]
    # An empty folder holds no checkpoint: some object stores keep a folder's entry after its
    # objects were moved or removed.
    on_disk = sorted(d for d in run_dir.glob("checkpoint_*") if _holds_anything(d))
    return on_disk[-1] if on_disk else None


def _holds_anything(folder: Path) -> bool:
    try:
        return any(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):  # an object store's leftover folder entry
        return False


def checkpoint_problem(run_dir: Path, task: TrainingTask | None = None) -> str | None:
    """Why the run's latest checkpoint cannot be resumed from; None when it can, or when there is
    nothing to resume. With a task, also whether it fits the model and optimizer the task makes."""
    if not run_dir.is_dir():
        return None
    latest = latest_checkpoint(run_dir)
    if latest is None:
        return None
    if not latest.is_dir():
        return f"checkpoint {latest.name} is named by Ray Train's snapshot but is missing"
    file = latest / CHECKPOINT_FILE
    if not file.is_file():
        return f"{file} is missing"
    try:
        with file.open("rb") as handle:
            state = torch.load(handle, weights_only=True, map_location="cpu")
    except Exception as error:  # noqa: BLE001 (any load failure means unusable)
        return f"{file} cannot be loaded ({type(error).__name__}: {str(error)[:200]})"
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        return f"{file} lacks {', '.join(missing)}: not a checkpoint of this training loop"
    bad = [
        name
        for name, tensor in state["model"].items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]
    if bad:
        return f"{file} holds non-finite weights ({', '.join(bad[:3])}): training diverged"
    if task is not None:
        mismatch = resume_mismatch(state, task)
        if mismatch:
            return f"{file} was written by another model or optimizer: {mismatch}"
    return None


def resume_mismatch(state: dict, task: TrainingTask) -> str:
    """What in a checkpoint's state does not fit the model and optimizer the task builds (empty
    when it fits): the weights' names and shapes, the optimizer's parameter groups."""
    model = task.build_model()
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    saved = {name: tuple(t.shape) for name, t in state["model"].items()}
    if saved != expected:
        missing = sorted(expected.keys() - saved.keys())
        unexpected = sorted(saved.keys() - expected.keys())
        reshaped = sorted(n for n in expected.keys() & saved.keys() if expected[n] != saved[n])
        parts = [
            f"{label} {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
            for label, names in (
                ("lacks", missing),
                ("has unknown", unexpected),
                ("has other shapes for", reshaped),
            )
            if names
        ]
        return "weights: " + "; ".join(parts)
    groups = [len(g["params"]) for g in task.make_optimizer(model).param_groups]
    saved_groups = [len(g["params"]) for g in state["optimizer"].get("param_groups", [])]
    if saved_groups != groups:
        return f"optimizer parameter groups of sizes {saved_groups}, this code makes {groups}"
    return ""


def finished_checkpoint(run_dir: Path, epochs: int) -> Path | None:
    """The run's latest checkpoint when it already holds all `epochs` (checked usable first)."""
    latest = latest_checkpoint(run_dir) if run_dir.is_dir() else None
    if latest is None or not (latest / HISTORY_FILE).is_file():
        return None
    return latest if len(json.loads((latest / HISTORY_FILE).read_text())) >= epochs else None


def set_aside(run_dir: Path, problem: str) -> Path:
    """Moves the run directory out of the way (so Ray Train starts fresh) and notes why."""
    target = run_dir.with_name(f"{run_dir.name}.discarded-{time.strftime('%Y%m%dT%H%M%S')}")
    move_tree(run_dir, target)
    (target / "DISCARDED.txt").write_text(f"{problem}\n")
    return target
