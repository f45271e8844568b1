"""How the autoscaler service finds the API server in its pod (autoscaler/kubeclient.py).

kubernetes.io/docs/tasks/run-application/access-api-from-pod/: the API server's address
from KUBERNETES_SERVICE_HOST and the port variable the kubelet sets in each container; the
token and CA in /var/run/secrets/kubernetes.io/serviceaccount. client-go's
rest.InClusterConfig (staging/src/k8s.io/client-go/rest/config.go) reads
KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT and joins them with
net.JoinHostPort (an IPv6 address in brackets).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.autoscaler.kubeclient import SERVICE_ACCOUNT, KubeApi, KubeApiError, in_cluster


def test_in_cluster_reads_the_pod_environment_and_service_account() -> None:
    api = in_cluster({"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"})
    assert api.server == "https://10.96.0.1:443"
    assert (api.token_file, api.ca_file) == (SERVICE_ACCOUNT / "token", SERVICE_ACCOUNT / "ca.crt")
    assert str(SERVICE_ACCOUNT) == "/var/run/secrets/kubernetes.io/serviceaccount"


def test_an_ipv6_service_address_is_bracketed() -> None:
    api = in_cluster({"KUBERNETES_SERVICE_HOST": "fd00:10:96::1",
                      "KUBERNETES_SERVICE_PORT": "443"})
    assert api.server == "https://[fd00:10:96::1]:443"


def test_outside_a_pod_the_error_says_what_is_missing() -> None:
    with pytest.raises(KubeApiError, match="KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"):
        in_cluster({})


def test_the_token_goes_only_over_tls(tmp_path: Path) -> None:
    with pytest.raises(KubeApiError, match="not an https URL"):
        KubeApi("http://10.96.0.1:443", tmp_path / "token", tmp_path / "ca.crt")


def test_a_missing_token_is_named_and_an_empty_one_refused(tmp_path: Path) -> None:
    api = KubeApi("https://10.96.0.1:443", tmp_path / "token", tmp_path / "ca.crt")
    with pytest.raises(KubeApiError, match=f"cannot read the service account token "
                                           f"{tmp_path / 'token'}"):
        api.check()
    (tmp_path / "token").write_text("\n")
    with pytest.raises(KubeApiError, match="is empty"):
        api.check()
