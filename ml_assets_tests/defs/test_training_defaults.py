from ml_assets.defs.kuberay_resource import KubeRayEphemeralCluster
from ml_assets.defs.ray_resource import LocalRayCluster
from ml_assets.defs.training.assets import EMBEDDED_WORKERS, default_workers


def test_training_uses_one_worker_per_profile_worker_unless_told():
    assert default_workers(KubeRayEphemeralCluster(profile="cpu-large")) == 8
    assert default_workers(KubeRayEphemeralCluster(profile="cpu-large", workers=3)) == 3
    assert default_workers(LocalRayCluster()) == EMBEDDED_WORKERS == 2
