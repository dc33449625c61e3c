"""The GPU switches on CPU: each must leave the CPU path exactly as it was. (The GPU branches
need a CUDA device; none is available to this project's CI.)"""

import pytest
import torch

from ml_assets.training.accelerator import (
    autocast,
    fill_device_batch_size,
    scaled_learning_rate,
    to_device,
)

CPU = torch.device("cpu")


def test_cpu_training_keeps_fp32_and_its_tensors():
    with autocast(CPU):
        product = torch.ones(4, 4) @ torch.ones(4, 4)
    assert product.dtype == torch.float32
    batch = (torch.zeros(2, 3), torch.zeros(2, 5, dtype=torch.int64), torch.ones(2))
    moved = to_device(batch, CPU)
    assert all(a is b for a, b in zip(moved, batch, strict=True))  # no copy, no pinning


def test_cpu_keeps_the_requested_batch_without_probing():
    probed = []
    assert fill_device_batch_size(1024, CPU, probed.append) == 1024
    assert probed == []


def test_a_larger_batch_gets_a_square_root_scaled_learning_rate():
    assert scaled_learning_rate(1e-3, 1024, 4096) == pytest.approx(2e-3)
    assert scaled_learning_rate(1e-3, 1024, 1024) == pytest.approx(1e-3)
