"""What the development cluster runs as pods: CoreDNS behind `kube-dns`, and the KubeRay operator
in its own namespace with the ServiceAccount and RBAC of its own module (what its Helm chart
renders), both under Pod Security `restricted`."""

from pathlib import Path

import yaml

from ml_assets_tests.kube.netns import NodeNetwork

OPERATOR_NAMESPACE = "kuberay-system"
RESTRICTED = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}
# Only the cluster's own names: the development cluster asks no resolver outside it.
COREFILE = """.:1053 {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
    }
    cache 30
}
"""


def restricted_namespace(name: str) -> dict:
    labels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn")}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def _deployment(name: str, namespace: str, service_account: str, container: dict,
                volumes=()) -> dict:  # fmt: skip
    labels = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": service_account,
                    "securityContext": RESTRICTED,
                    "containers": [
                        {
                            "imagePullPolicy": "Never",
                            "securityContext": CONTAINER_RESTRICTED,
                            **container,
                        }
                    ],
                    "volumes": list(volumes),
                },
            },
        },
    }


def coredns(network: NodeNetwork, image: str) -> list[dict]:
    namespace = "kube-system"
    rules = [
        {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
         "verbs": ["list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
         "verbs": ["list", "watch"]},
    ]  # fmt: skip
    container = {
        "name": "coredns",
        "image": image,
        "args": ["-conf", "/etc/coredns/Corefile"],
        "ports": [
            {"name": "dns", "containerPort": 1053, "protocol": "UDP"},
            {"name": "dns-tcp", "containerPort": 1053, "protocol": "TCP"},
        ],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "coredns", "namespace": namespace}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "system:coredns"}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "system:coredns"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "system:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": namespace}]},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "coredns", "namespace": namespace}, "data": {"Corefile": COREFILE}},
        _deployment("coredns", namespace, "coredns", container,
                    [{"name": "config", "configMap": {"name": "coredns"}}]),
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": namespace},
         "spec": {"clusterIP": network.dns_service_ip,
                  "selector": {"app.kubernetes.io/name": "coredns"},
                  "ports": [{"name": "dns", "port": 53, "targetPort": 1053, "protocol": "UDP"},
                            {"name": "dns-tcp", "port": 53, "targetPort": 1053,
                             "protocol": "TCP"}]}},
    ]  # fmt: skip


def kuberay_operator(rbac_dir: Path, image: str, watch_namespaces: list[str]) -> list[dict]:
    """The operator's own ServiceAccount, ClusterRole and leader-election Role (from the
    module's `config/rbac`, as kustomize renders them into `OPERATOR_NAMESPACE`) and its pod."""
    listed = yaml.safe_load((rbac_dir / "kustomization.yaml").read_text())["resources"]
    documents = [restricted_namespace(OPERATOR_NAMESPACE)]
    for name in listed:
        for document in yaml.safe_load_all((rbac_dir / name).read_text()):
            if not document:
                continue
            if document["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
                document["metadata"]["namespace"] = OPERATOR_NAMESPACE
            for subject in document.get("subjects", []):
                subject["namespace"] = OPERATOR_NAMESPACE
            documents.append(document)
    container = {
        "name": "kuberay-operator",
        "image": image,
        "args": [
            f"--watch-namespace={','.join(watch_namespaces)}",
            "--enable-leader-election=false",
            "--metrics-addr=:8080",
            "--health-probe-bind-address=:8082",
        ],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8082}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                      "limits": {"memory": "512Mi"}},
    }  # fmt: skip
    documents.append(_deployment("kuberay-operator", OPERATOR_NAMESPACE, "kuberay-operator",
                                 container))  # fmt: skip
    return documents
