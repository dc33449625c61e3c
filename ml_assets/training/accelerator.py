"""What changes when the training worker has a GPU: bf16 autocast, pinned-memory copies and a
batch size that fills the device. On CPU each is a no-op, so one code path serves both.

Measured only on CPU so far (no GPU machine was available to this project's sessions); the GPU
branches follow PyTorch's documented APIs, and `bench.training` runs them where a GPU is
visible.
"""

import contextlib
from collections.abc import Callable

import torch

from ml_assets.training.task import Batch


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on a GPU that supports it: matmuls in bf16, the loss and the optimizer
    state in fp32 (no loss scaling needed, unlike fp16). Nothing on CPU: bf16 matmuls on a
    CPU without AMX are slower than fp32."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Host batch -> device. To a GPU through pinned memory, so the copy is asynchronous and
    overlaps the previous step's kernels; on CPU the tensors are returned as they are."""
    if device.type != "cuda":
        return batch
    return tuple(t.pin_memory().to(device, non_blocking=True) for t in batch)


def fill_device_batch_size(
    requested: int,
    device: torch.device,
    try_step: Callable[[int], None],
    *,
    memory_share: float = 0.5,
    largest: int = 1 << 16,
) -> int:
    """The per-worker batch size to train with. On CPU: `requested` (the step time grows with
    the batch; nothing to fill). On a GPU: doubles `requested` while one training step of that
    size (`try_step`, forward and backward on dummy rows) peaks under `memory_share` of the
    device's memory, up to `largest`: small batches leave a GPU idle between kernel launches."""
    if device.type != "cuda":
        return requested
    total = torch.cuda.get_device_properties(device).total_memory
    size = requested
    while size * 2 <= largest:
        torch.cuda.reset_peak_memory_stats(device)
        try:
            try_step(size * 2)
        except torch.cuda.OutOfMemoryError:
            break
        finally:
            torch.cuda.empty_cache()
        if torch.cuda.max_memory_allocated(device) > memory_share * total:
            break
        size *= 2
    return size


def scaled_learning_rate(learning_rate: float, requested: int, actual: int) -> float:
    """Adam's learning rate for a batch `actual / requested` times larger: square-root scaling,
    which keeps the noise of an update about constant (linear scaling overshoots with Adam)."""
    return learning_rate * (actual / requested) ** 0.5
