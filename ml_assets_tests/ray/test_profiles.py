"""Cluster profiles and the RayCluster they render: pure code, no API server needed."""

from dataclasses import replace
from importlib.metadata import version

import pytest

from ml_assets.ray.cluster_spec import (
    ClusterOwner,
    OwnerPod,
    cluster_name,
    label_value,
    render_raycluster,
)
from ml_assets.ray.profiles import ProfileError, load_profile, preflight, with_overrides
from ml_assets.version import code_version

RAY = version("ray")
OWNER = ClusterOwner(
    run_id="5b0c9a1e-1111-2222-3333-444455556666",
    asset="ranking_model",
    partition="2026-11-01..2026-11-07",
    owner_uid="f00dbabe",
)


def test_gpu_profile_renders_gpu_workers_on_their_pool():
    spec = render_raycluster(load_profile("gpu-l4"), OWNER)
    (group,) = spec["spec"]["workerGroupSpecs"]
    pod = group["template"]["spec"]
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == 2
    assert pod["containers"][0]["resources"]["limits"] == {
        "cpu": "8",
        "memory": "32Gi",
        "nvidia.com/gpu": "1",
    }
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert spec["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert spec["spec"]["rayVersion"] == RAY


def test_spot_profile_places_workers_on_spot_nodes():
    spec = render_raycluster(load_profile("cpu-large"), OWNER)
    pod = spec["spec"]["workerGroupSpecs"][0]["template"]["spec"]
    assert pod["nodeSelector"] == {"karpenter.sh/capacity-type": "spot"}
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]


def test_labels_tie_the_cluster_to_run_asset_partition_and_code_version():
    spec = render_raycluster(load_profile("cpu-small"), OWNER)
    labels = spec["metadata"]["labels"]
    assert labels["ml-assets.io/run-id"] == OWNER.run_id
    assert labels["ml-assets.io/asset"] == "ranking_model"
    assert labels["ml-assets.io/partition"] == "2026-11-01..2026-11-07"
    assert labels["ml-assets.io/code-version"] == label_value(code_version())
    assert code_version().startswith(version("ml-assets") + "+g")  # a git checkout
    assert labels["ml-assets.io/owner-uid"] == "f00dbabe"
    assert spec["metadata"]["name"] == "mla-ranking-model-5b0c9a1e-f00dba"
    head_pod_labels = spec["spec"]["headGroupSpec"]["template"]["metadata"]["labels"]
    assert head_pod_labels == labels  # pods are traceable too


def test_names_and_label_values_stay_within_kubernetes_limits():
    owner = ClusterOwner(run_id="x" * 36, asset="A/Very Long::Asset Key" * 5, owner_uid="u" * 8)
    name = cluster_name(owner)
    assert len(name) <= 45 and name == name.lower() and name[0].isalpha()
    value = label_value("a/b c" * 40)
    assert len(value) <= 63 and value[0].isalnum() and value[-1].isalnum()


def test_a_step_in_a_pod_makes_that_pod_the_clusters_owner():
    pod = OwnerPod(
        "dagster-run-5b0c9a1e-abcde", "0a1b2c3d-0000-4000-8000-000000000001", "ml-assets"
    )
    assert "ownerReferences" not in render_raycluster(load_profile("dev"), OWNER)["metadata"]
    spec = render_raycluster(load_profile("dev"), replace(OWNER, pod=pod))
    # Only the garbage collector's link: not a controller, no blockOwnerDeletion (which would
    # need delete rights on pods).
    assert spec["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": pod.name, "uid": pod.uid}
    ]
    elsewhere = replace(OWNER, pod=replace(pod, namespace="dagster"))
    with pytest.raises(ValueError, match="owner must be in its dependent's namespace"):
        render_raycluster(load_profile("dev"), elsewhere)


def test_zero_workers_lets_the_head_do_the_work():
    profile = with_overrides(load_profile("cpu-small"), workers=0)
    spec = render_raycluster(profile, OWNER)
    assert spec["spec"]["workerGroupSpecs"] == []
    assert spec["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "1"


@pytest.mark.parametrize(
    ("profile", "changes", "message"),
    [
        ("gpu-l4", {"gpu_type": "nvidia-b300"}, "unknown GPU type 'nvidia-b300'"),
        ("cpu-small", {"gpus_per_worker": 1}, "1 GPUs per worker without a GPU type"),
        ("cpu-small", {"workers": 9}, "asks for 9 workers, above its quota of 8"),
        ("gpu-l4", {"gpus_per_worker": 4}, "asks for 8 GPUs, above its quota of 4"),
        ("cpu-small", {"worker_memory_gib": 200}, "GiB of memory, above its quota of 256"),
        ("cpu-small", {"image": "ghcr.io/ml-assets/ml-assets"}, "has no pinned version tag"),
        ("cpu-small", {"image": "ghcr.io/ml-assets/ml-assets:latest"}, "no pinned version tag"),
        ("cpu-small", {"image": "rayproject/ray:2.9.3-py311"}, "carries Ray 2.9.3 / Python 3.11"),
        ("cpu-small", {"image": f"rayproject/ray:{RAY}-py310"}, f"Ray {RAY} / Python 3.10"),
    ],
)
def test_preflight_refuses_what_cannot_run_and_names_the_fix(profile, changes, message):
    bad = load_profile(profile).model_copy(update=changes)
    with pytest.raises(ProfileError, match=message) as refused:
        preflight(bad)
    assert "fix:" in str(refused.value)


def test_preflight_accepts_rays_own_image_naming():
    preflight(load_profile("cpu-small").model_copy(update={"image": f"rayproject/ray:{RAY}-py311"}))


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(ProfileError, match=r"(?s)no cluster profile 'gpu-b200'.*cpu-small"):
        load_profile("gpu-b200")


def test_invalid_profile_file_names_the_field(tmp_path):
    (tmp_path / "broken.yaml").write_text(
        "name: broken\nimage: x:1\nworkers: -1\nworker_cpu: 1\nworker_memory_gib: 1\n"
        "quota: {max_workers: 1, max_cpu: 1, max_memory_gib: 1}\n"
    )
    with pytest.raises(ProfileError, match=r"workers\n.*greater than or equal to 0"):
        load_profile("broken", tmp_path)


def test_overrides_are_validated():
    with pytest.raises(ProfileError, match="overrides .* are invalid"):
        with_overrides(load_profile("cpu-small"), workers=-2)
