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


def exec_in(api_client, namespace: str, pod: str, command: list[str]) -> str:
    from kubernetes.stream import stream

    core = client.CoreV1Api(api_client)
    return stream(
        core.connect_get_namespaced_pod_exec, pod, namespace, command=command,
        stderr=True, stdin=False, stdout=True, tty=False,
    )  # fmt: skip


def exec_answer(api_client, namespace: str, pod: str) -> int:
    """The HTTP status of an exec request sent without its protocol upgrade: 403 when the
    caller may not exec (authorization comes first), 400 "Upgrade request required" when it may.
    (The client's own websocket path turns a refused handshake into an AttributeError.)"""
    import ssl
    import urllib.error
    import urllib.request

    config = api_client.configuration
    request = urllib.request.Request(
        f"{config.host}/api/v1/namespaces/{namespace}/pods/{pod}/exec?command=true&stdout=true",
        method="POST",
        headers={"Authorization": config.api_key["BearerToken"]},
    )
    context = ssl.create_default_context(cafile=config.ssl_ca_cert)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_cannot_exec_into_pods_which_an_admin_can(control_plane, service_account_api):
    admin = control_plane.api_client()
    (dns,) = client.CoreV1Api(admin).list_namespaced_pod("kube-system").items
    # The positive control: the API server reaches the kubelet, which checks who asks.
    assert "CoreDNS-" in exec_in(admin, "kube-system", dns.metadata.name, ["/coredns", "-version"])
    assert exec_answer(service_account_api, "kube-system", dns.metadata.name) == 403
    # ...and in its own namespace, as the authorizer answers when asked.
    attributes = {"namespace": NAMESPACE, "verb": "create", "resource": "pods",
                  "subresource": "exec"}  # fmt: skip
    review = client.AuthorizationV1Api(service_account_api).create_self_subject_access_review(
        {"spec": {"resourceAttributes": attributes}}
    )
    assert review.status.allowed is False


def test_the_ray_pods_account_has_no_api_rights(control_plane):
    token = (
        control_plane.api_client_core()
        .create_namespaced_service_account_token(
            "ray-node", NAMESPACE, {"spec": {"audiences": ["https://kubernetes.default.svc"]}}
        )
        .status.token
    )
    ray_node = control_plane.api_client(token)
    core = client.CoreV1Api(ray_node)
    assert forbidden(lambda: core.list_namespaced_pod(NAMESPACE))
    assert forbidden(lambda: core.read_namespaced_secret("ml-assets-ray-auth", NAMESPACE))
    assert forbidden(
        lambda: client.CustomObjectsApi(ray_node).list_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL
        )
    )
