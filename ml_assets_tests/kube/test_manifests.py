"""Every manifest the project ships or generates is accepted by a real API server's validation."""

import copy

import pytest
from kubernetes.client import ApiException

from ml_assets.ray.cluster_spec import ClusterOwner, render_raycluster
from ml_assets.ray.profiles import DEFAULT_PROFILES_DIR, ProfileError, load_profile
from ml_assets_tests.kube.conftest import K8S_DIR, NAMESPACE, apply, list_rayclusters, manifests

OWNER = ClusterOwner(run_id="0f1e2d3c-aaaa-bbbb-cccc-1234567890ab", asset="ranking_model",
                     partition="2026-11-01..2026-11-07", owner_uid="ab12cd34")  # fmt: skip
PROFILES = sorted(path.stem for path in DEFAULT_PROFILES_DIR.glob("*.yaml"))


def test_the_repository_ships_cpu_and_gpu_profiles():
    gpu_profiles = [name for name in PROFILES if load_profile(name).gpu_type]
    assert len(PROFILES) >= 4 and len(gpu_profiles) >= 2


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_renders_a_raycluster_the_server_accepts(admin, profile):
    manifest = render_raycluster(load_profile(profile), OWNER)
    apply(admin, [manifest], dry_run=True)
    assert list_rayclusters(admin) == []  # a dry run persists nothing


def test_the_server_refuses_a_raycluster_that_breaks_the_crd_schema(admin):
    manifest = render_raycluster(load_profile("cpu-small"), OWNER)
    broken = copy.deepcopy(manifest)
    broken["spec"]["workerGroupSpecs"][0]["replicas"] = "two"
    with pytest.raises(ApiException) as refused:
        apply(admin, [broken], dry_run=True)
    assert refused.value.status == 422 and "replicas" in refused.value.body


def test_an_invalid_profile_is_refused_before_reaching_the_server(admin):
    profile = load_profile("gpu-l4").model_copy(update={"gpu_type": "nvidia-b300"})
    with pytest.raises(ProfileError, match="unknown GPU type 'nvidia-b300'"):
        render_raycluster(profile, OWNER)
    assert list_rayclusters(admin) == []


@pytest.mark.parametrize(
    "path",
    ["rbac.yaml", "rayclusters/raycluster.template.yaml", "namespace.yaml", "networkpolicy.yaml"],
)
def test_k8s_manifests_apply_with_a_server_side_dry_run(admin, path):
    documents = manifests(K8S_DIR / path)
    if path != "rayclusters/raycluster.template.yaml":
        # Already created by the fixture: a dry run of a second create must hit "exists", which
        # proves the server ran admission on it; rename to see the dry run succeed.
        for document in documents:
            document["metadata"]["name"] += "-dry"
    apply(admin, documents, dry_run=True)


def test_pod_security_restricted_refuses_a_bare_pod_with_its_reasons(admin):
    from kubernetes import client

    bare = {"metadata": {"name": "bare"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    with pytest.raises(ApiException) as refused:
        client.CoreV1Api(admin).create_namespaced_pod(NAMESPACE, bare, dry_run="All")
    assert refused.value.status == 403
    for reason in ("allowPrivilegeEscalation != false", "unrestricted capabilities",
                   "runAsNonRoot != true", "seccompProfile"):  # fmt: skip
        assert reason in refused.value.body


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profiles_ray_pods_pass_pod_security_restricted(admin, profile):
    from kubernetes import client

    spec = render_raycluster(load_profile(profile), OWNER)["spec"]
    templates = [spec["headGroupSpec"]["template"]]
    templates += [group["template"] for group in spec["workerGroupSpecs"]]
    for template in templates:
        pod = {"metadata": {"name": "admission-probe"}, "spec": template["spec"]}
        created = client.CoreV1Api(admin).create_namespaced_pod(NAMESPACE, pod, dry_run="All")
        assert created.spec.security_context.seccomp_profile.type == "RuntimeDefault"
