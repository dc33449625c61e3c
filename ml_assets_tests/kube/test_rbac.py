"""Each ServiceAccount of k8s/rbac.yaml, with its own token, can do its job and nothing more:
the code location's, Dagster's (daemon and webserver) and the Ray pods'."""

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from ml_assets.ray.cluster_spec import ClusterOwner, render_raycluster
from ml_assets.ray.profiles import load_profile
from ml_assets_tests.kube.conftest import GROUP, NAMESPACE, PLURAL, VERSION, apply

SERVICE_ACCOUNT = "ml-assets-code-location"


def account_api(control_plane, account: str):
    """An ApiClient authenticated as `account` (a TokenRequest, as a pod would get)."""
    admin = control_plane.api_client_core()
    token = admin.create_namespaced_service_account_token(
        account, NAMESPACE, {"spec": {"audiences": ["https://kubernetes.default.svc"]}}
    ).status.token
    whoami = client.AuthenticationV1Api(control_plane.api_client()).create_token_review(
        {"spec": {"token": token}}
    )
    assert whoami.status.user.username == f"system:serviceaccount:{NAMESPACE}:{account}"
    return control_plane.api_client(token)


@pytest.fixture(scope="module")
def service_account_api(control_plane):
    return account_api(control_plane, SERVICE_ACCOUNT)


@pytest.fixture(scope="module")
def dagster_api(control_plane):
    return account_api(control_plane, "dagster")


def rbac_test_cluster(owner_uid: str) -> dict:
    owner = ClusterOwner(run_id="rbac-test-run", asset="rbac", owner_uid=owner_uid)
    return render_raycluster(load_profile("cpu-small"), owner)


def forbidden(call) -> bool:
    try:
        call()
    except ApiException as error:
        return error.status == 403
    return False


def refusal(call) -> str:
    """The API server's message refusing `call`; fails if it was accepted."""
    with pytest.raises(ApiException) as refused:
        call()
    return str(refused.value.body)


def run_job(service_account: str) -> dict:
    """A Job as K8sRunLauncher creates one for a run, under Pod Security `restricted`."""
    security = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    pod = {
        "serviceAccountName": service_account,
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "run", "image": "ml-assets.local/ml-assets:dev",
                        "command": ["dagster", "api", "execute_run"],
                        "securityContext": security}],
    }  # fmt: skip
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "dagster-run-rbac-test", "namespace": NAMESPACE},
        "spec": {"backoffLimit": 0, "template": {"spec": pod}},
    }


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


def test_dagster_launches_runs_as_jobs_and_does_nothing_else(dagster_api):
    jobs = client.BatchV1Api(dagster_api)
    created = jobs.create_namespaced_job(NAMESPACE, run_job(SERVICE_ACCOUNT), dry_run="All")
    assert created.spec.template.spec.service_account_name == SERVICE_ACCOUNT
    core = client.CoreV1Api(dagster_api)
    assert core.list_namespaced_pod(NAMESPACE).items is not None  # a run's pod and its log
    # Terminating a run deletes its Job without propagation, then its pod (dagster-k8s).
    attributes = {"namespace": NAMESPACE, "verb": "delete", "resource": "pods"}
    review = client.AuthorizationV1Api(dagster_api).create_self_subject_access_review(
        {"spec": {"resourceAttributes": attributes}}
    )
    assert review.status.allowed is True
    custom = client.CustomObjectsApi(dagster_api)
    manifest = rbac_test_cluster("d1")
    assert forbidden(
        lambda: custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, manifest)
    )
    assert forbidden(lambda: core.list_namespaced_secret(NAMESPACE))
    pod = {"metadata": {"name": "sneaky"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    assert forbidden(lambda: core.create_namespaced_pod(NAMESPACE, pod))
    assert forbidden(lambda: jobs.list_namespaced_job("default"))


def test_a_run_job_whose_pods_would_run_as_another_account_is_refused(dagster_api):
    """Else launching a Job would hand its pods the rights of any account in the namespace."""
    jobs = client.BatchV1Api(dagster_api)
    message = refusal(
        lambda: jobs.create_namespaced_job(NAMESPACE, run_job("dagster"), dry_run="All")
    )
    assert "must run as ServiceAccount ml-assets-code-location" in message, message


def test_a_raycluster_whose_pods_would_run_as_another_account_is_refused(service_account_api):
    """Else the code location could have the operator build pods that launch Jobs as Dagster."""
    custom = client.CustomObjectsApi(service_account_api)
    for group in ("head", "worker"):
        manifest = rbac_test_cluster(f"sa-{group}")
        spec = manifest["spec"]
        template = (spec["headGroupSpec"] if group == "head" else spec["workerGroupSpecs"][0])[
            "template"
        ]
        template["spec"]["serviceAccountName"] = "dagster"
        message = refusal(
            lambda m=manifest: custom.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, m, dry_run="All"
            )
        )
        assert f"{group} pod" in message and "must run as ServiceAccount ray-node" in message
