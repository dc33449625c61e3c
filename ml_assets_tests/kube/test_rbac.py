"""The code location's ServiceAccount, with its own token, can do its job and nothing more."""

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from ml_assets.ray.cluster_spec import ClusterOwner, render_raycluster
from ml_assets.ray.profiles import load_profile
from ml_assets_tests.kube.conftest import NAMESPACE, apply
from ml_assets_tests.kube.fake_kuberay import GROUP, PLURAL, VERSION

SERVICE_ACCOUNT = "ml-assets-code-location"


@pytest.fixture(scope="module")
def service_account_api(control_plane):
    """An ApiClient authenticated as the ServiceAccount (a TokenRequest, as a pod would get)."""
    admin = control_plane.api_client_core()
    token = admin.create_namespaced_service_account_token(
        SERVICE_ACCOUNT, NAMESPACE, {"spec": {"audiences": ["https://kubernetes.default.svc"]}}
    ).status.token
    whoami = client.AuthenticationV1Api(control_plane.api_client()).create_token_review(
        {"spec": {"token": token}}
    )
    assert whoami.status.user.username == f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
    return control_plane.api_client(token)


def rbac_test_cluster(owner_uid: str) -> dict:
    owner = ClusterOwner(run_id="rbac-test-run", asset="rbac", owner_uid=owner_uid)
    return render_raycluster(load_profile("cpu-small"), owner)


def forbidden(call) -> bool:
    try:
        call()
    except ApiException as error:
        return error.status == 403
    return False


def test_creates_reads_and_deletes_rayclusters_in_its_namespace(service_account_api):
    manifest = rbac_test_cluster("r1")
    custom = client.CustomObjectsApi(service_account_api)
    apply(service_account_api, [manifest])
    name = manifest["metadata"]["name"]
    assert custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    core = client.CoreV1Api(service_account_api)
    assert core.list_namespaced_pod(NAMESPACE).items is not None  # pods: read
    assert core.list_namespaced_event(NAMESPACE).items is not None  # events: read
    custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)


def test_cannot_read_secrets(service_account_api):
    core = client.CoreV1Api(service_account_api)
    assert forbidden(lambda: core.list_namespaced_secret(NAMESPACE))
    assert forbidden(lambda: core.read_namespaced_secret("anything", NAMESPACE))


def test_cannot_create_pods_directly(service_account_api):
    core = client.CoreV1Api(service_account_api)
    pod = {
        "metadata": {"name": "sneaky"},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
    }
    assert forbidden(lambda: core.create_namespaced_pod(NAMESPACE, pod))


def test_cannot_touch_another_namespace(service_account_api):
    custom = client.CustomObjectsApi(service_account_api)
    manifest = rbac_test_cluster("r2")
    manifest["metadata"]["namespace"] = "default"
    assert forbidden(
        lambda: custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, manifest)
    )
    assert forbidden(
        lambda: custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    )
    assert forbidden(lambda: client.CoreV1Api(service_account_api).list_namespaced_pod("default"))
    assert forbidden(lambda: custom.list_cluster_custom_object(GROUP, VERSION, PLURAL))
