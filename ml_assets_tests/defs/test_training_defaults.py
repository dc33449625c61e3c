import dataclasses
from dataclasses import MISSING

from ml_assets.defs.ads_ranking.training.assets import TrainingConfig
from ml_assets.defs.kuberay_resource import KubeRayEphemeralCluster
from ml_assets.defs.ray_resource import LocalRayCluster
from ml_assets.defs.training_step import EMBEDDED_WORKERS, default_workers
from ml_assets.ranking.configs import ModelConfig, TrainConfig


def test_training_uses_one_worker_per_profile_worker_unless_told():
    assert default_workers(KubeRayEphemeralCluster(profile="cpu-large")) == 8
    assert default_workers(KubeRayEphemeralCluster(profile="cpu-large", workers=3)) == 3
    assert default_workers(LocalRayCluster()) == EMBEDDED_WORKERS == 2


def test_the_asset_trains_with_the_models_and_the_loops_own_defaults():
    """One set of training defaults: what a materialization trains is what the loop, the model
    and the benchmarks default to (ranking.configs)."""
    asset = TrainingConfig().model_dump()
    asset["max_steps_per_epoch"] = asset["max_steps_per_epoch"] or None  # the asset's 0 is None
    shipped = TrainConfig().to_dict() | {
        f.name: f.default for f in dataclasses.fields(ModelConfig) if f.default is not MISSING
    }
    shared = set(asset) & set(shipped)
    assert shared >= {
        "architecture", "epochs", "batch_size", "learning_rate", "lr_schedule",
        "embedding_prior", "first_order_prior", "deep_weight_decay", "cross_weight_decay",
        "feature_gate_penalty",
        "embedding_dim", "cross_layers", "deep_layers", "first_order", "dense_curves", "seed",
    }  # fmt: skip
    for name in shared:
        expected = shipped[name]
        assert asset[name] == (list(expected) if isinstance(expected, tuple) else expected), name
