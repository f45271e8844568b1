"""What the restoring first control-plane node relies on in kubeadm, etcd and containerd.

Checked on the RENDERED production controller-init user-data: its bootstrap script (as the
node gets it) and its kubeadm configuration. tests/integration/test_restore_node.py runs
the same functions against a real etcd; this file pins the upstream facts they stand on.

Sources read (facts, not code, copied here):

* kubernetes/kubernetes ``cmd/kubeadm/app/preflight/checks.go``: ``RunInitNodeChecks``
  adds ``DirAvailableCheck{Path: cfg.Etcd.Local.DataDir}`` for a local etcd; a check with
  no Label is named ``"DirAvailable-" + Path with "/" replaced by "-"`` and fails on a
  non-empty directory; it is the only init check about the data dir (the others there are
  ports 2379/2380 and the manifest files, free on a new droplet). ``--ignore-preflight-errors``
  takes check names and shows those checks' errors as warnings (kubeadm init reference).
  kubeadm documents no restore procedure of its own; Kubernetes' "Operating etcd clusters
  for Kubernetes" (kubernetes/website ``content/en/docs/tasks/administer-cluster/
  configure-upgrade-etcd.md``, "Restoring an etcd cluster") restores a snapshot into the
  data dir the member then starts on, which is what ``kubeadm init`` over the restored
  ``/var/lib/etcd/member`` does.
* ``cmd/kubeadm/app/phases/etcd/local.go`` ``getEtcdCommand``: the local member runs with
  ``--name=<node name>``, ``--initial-advertise-peer-urls`` and ``--listen-peer-urls``
  ``https://<localAPIEndpoint.advertiseAddress>:2380`` (``GetPeerURL``), ``--data-dir`` =
  ``etcd.local.dataDir``, and ``--initial-cluster <name>=<that URL>``. With a data dir
  already holding a member, etcd ignores the initial-cluster flags and keeps the membership
  the restore wrote, so that must be the same name and peer URL.
* ``cmd/kubeadm/app/util/config/initconfiguration.go`` ``SetNodeRegistrationDynamicDefaults``
  and ``GetHostname``: an unset ``nodeRegistration.name`` becomes the hostname
  (``os.Hostname``), trimmed and lowercased.
* ``cmd/kubeadm/app/constants/constants.go`` ``SupportedEtcdVersion``: Kubernetes 1.34,
  1.35 and 1.36 run ``registry.k8s.io/etcd:3.6.9-0`` (as quoted by etcd-io/etcd
  ``Documentation/contributor-guide/bump_etcd_version_k8s.md``, commit c34dc7ee, for
  kubernetes/kubernetes PR #137956); that tag is the promoted copy of the etcd project's
  own image ``gcr.io/etcd-development/etcd:v3.6.9`` (same guide, step 1). Kubernetes 1.37
  was not read: the etcd project moves the last three minors together and kubeadm takes
  the nearest listed version for a minor missing from its map (``EtcdSupportedVersion``).
* etcd-io/etcd ``Dockerfile`` at v3.6.9 (commit 85651fa5): ``ADD etcdutl /usr/local/bin/``
  (every image since v3.5.0, ``Dockerfile-release.amd64``), on distroless (no shell: the
  command is run directly).
* etcd-io/etcd ``etcdutl/etcdutl/snapshot_command.go`` at v3.6.9: ``snapshot restore
  <filename> --data-dir {output dir} [options]`` with the flags in ETCDUTL_RESTORE_FLAGS;
  ``etcdutl/snapshot/v3_snapshot.go``: it refuses a data dir that exists and is not empty.
* The stale Node objects (``restore_nodes``): the restored etcd holds the Nodes of the
  control-plane droplets the restore replaced, under the names the new droplets reuse.

  - kubernetes/kubernetes ``pkg/kubelet/kubelet_node_status.go`` ``tryRegisterWithAPIServer``
    (read in the 1.27+ form with ``nodeStartupLatencyTracker``; the same in the older stored
    copy, commit 00b88c14): when Create answers AlreadyExists the kubelet Gets the Node, logs
    "Node was previously registered" and reconciles only the controller-managed
    attach-detach annotation, the default labels and the extended and huge-page resources:
    ``spec.providerID`` stays the old droplet's. ``registerWithAPIServer`` runs until
    ``registrationCompleted``, so a Node deleted later is not registered again until the
    kubelet restarts. ``initialNode``: with an external cloud provider (this kubeadm
    configuration's ``cloud-provider: external``) a new Node carries the taint
    ``node.cloudprovider.kubernetes.io/uninitialized`` and ``spec.providerID`` = the
    kubelet's ``--provider-id``.
  - ``pkg/apis/core/validation/validation.go`` ``ValidateNodeUpdate`` (commit 000f2605):
    ``len(oldNode.Spec.ProviderID) > 0 && oldNode.Spec.ProviderID != node.Spec.ProviderID``
    is Forbidden: "node updates may not change providerID except from \"\" to valid". So
    the Node must be deleted, not patched.
  - ``cmd/kubeadm/app/cmd/phases/join/kubelet.go`` ``runKubeletStartJoinPhase`` (1.31+ form,
    ControlPlaneKubeletLocalMode): before the TLS bootstrap, a Node of the joining name whose
    Ready condition is True fails the join with "a Node with name %q and status %q already
    exists in the cluster. You must delete the existing Node or change the name of this new
    joining Node".
  - digitalocean/digitalocean-cloud-controller-manager ``cloud-controller-manager/do/
    droplets.go`` (v0.1.68-7, commit 70d527e3): ``providerIDPrefix = "digitalocean://"``,
    ``InstanceMetadata`` answers ``digitalocean://<droplet id>`` and
    ``dropletIDFromProviderID`` reads a Node's droplet from it; a droplet that is gone
    makes ``InstanceMetadata`` fail ("droplet %d for node %s does not exist").
  - kubeadm init phases (``cmd/kubeadm/app/cmd/phases/init/``): ``uploadcerts.go``
    ``NewUploadCertsPhase`` is named ``upload-certs`` and inherits the flags
    UPLOAD_CERTS_FLAGS; it uploads only with ``--upload-certs`` and takes the certificate
    key from the configuration (``certificateKey``) when ``--certificate-key`` is not
    given, printing it unless ``--skip-certificate-key-print``; ``cmd/kubeadm/app/phases/
    copycerts/copycerts.go`` ``UploadCerts`` writes kubeadm-certs with
    ``CreateOrUpdateSecret``, so the snapshot's copy (sealed under an older key) is
    replaced. ``markcontrolplane.go``
    ``NewMarkControlPlanePhase`` (``mark-control-plane``, flags MARK_CONTROL_PLANE_FLAGS)
    applies kubeadm's control-plane label and the configuration's taints to
    ``nodeRegistration.name`` (the hostname, as above). ``cmd/kubeadm/app/apis/kubeadm/
    validation/validation.go`` ``isAllowedFlag``: ``--config`` may be mixed with
    ``--upload-certs``, ``--ignore-preflight-errors`` and any ``--skip-*`` flag, so
    ``--skip-phases=upload-certs`` with ``--config`` is accepted.
* containerd ``internal/cri/constants/constants.go``: the CRI plugin (which kubeadm's image
  pulls and the kubelet use) keeps its images in namespace ``k8s.io``, where ``ctr -n
  k8s.io`` finds the image ``kubeadm config images pull`` fetched.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import yaml

from provisioner.config.checks import SUPPORTED_MINORS
from provisioner.render.cloudinit import NODE_PRIVATE_IP
from tests.support.rendering import BOOTSTRAP, materialize, rendered, written

# etcd v3.6.9 etcdutl/etcdutl/snapshot_command.go, NewSnapshotRestoreCommand.
ETCDUTL_RESTORE_FLAGS = {"data-dir", "wal-dir", "initial-cluster", "initial-cluster-token",
                         "initial-advertise-peer-urls", "name", "skip-hash-check",
                         "initial-memory-map-size", "bump-revision", "mark-compacted"}
# constants.go SupportedEtcdVersion (see the module docstring; 1.37 not read, inferred).
ETCD_IMAGE = {"1.35": "3.6.9-0", "1.36": "3.6.9-0", "1.37": "3.6.9-0"}
ETCDUTL_SINCE = (3, 5)  # etcd v3.5.0 is the first image with etcdutl
# kubeadm phases/init/uploadcerts.go and markcontrolplane.go, InheritFlags.
UPLOAD_CERTS_FLAGS = {"config", "kubeconfig", "upload-certs", "certificate-key",
                      "skip-certificate-key-print", "dry-run"}
MARK_CONTROL_PLANE_FLAGS = {"node-name", "config"}
# The digitalocean CCM's providerIDPrefix (do/droplets.go).
PROVIDER_ID_PREFIX = "digitalocean://"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


def _files() -> dict[str, str]:
    config = yaml.safe_load(materialize(rendered("production")["cloud-init/controller-init.yaml"]))
    return {str(f["path"]): written(f) for f in config["write_files"]}


def _kubeadm() -> tuple[dict[str, Any], dict[str, Any]]:
    init, cluster = [d for d in yaml.safe_load_all(_files()["/etc/provision/kubeadm.yaml"])
                     if d["kind"] in ("InitConfiguration", "ClusterConfiguration")]
    return init, cluster


def _function(name: str) -> str:
    found = re.search(rf"^{name}\(\) [{{(]\n(.*?)^[}})]$", _files()[BOOTSTRAP], re.M | re.S)
    assert found, f"the bootstrap script has no {name} function"
    return found.group(1)


def _command(body: str, first_word: str) -> list[str]:
    """The one command line of `body` starting with `first_word` (continuations joined)."""
    lines = body.replace("\\\n", " ").splitlines()
    (line,) = [line for line in lines if line.strip().startswith(first_word + " ")]
    return shlex.split(line)


def test_the_preflight_exception_is_kubeadms_check_of_the_etcd_data_dir() -> None:
    _, cluster = _kubeadm()
    data_dir = cluster["etcd"]["local"]["dataDir"]
    check = "DirAvailable-" + data_dir.replace("/", "-")
    assert check == "DirAvailable--var-lib-etcd"
    assert re.findall(r"^ +ignore=\((.*)\)$", _function("init_control_plane"), re.M) == [
        f"--ignore-preflight-errors={check}"]
    # The script restores into the directory kubeadm's etcd uses.
    assert re.search(rf"^readonly ETCD_DATA=\$\{{PROVISION_ROOT:-\}}{data_dir}$",
                     _files()[BOOTSTRAP], re.M)


def test_the_exception_is_given_only_when_restoring() -> None:
    body = _function("init_control_plane")
    branch = re.search(r'if \[\[ -n "\$\(restore_value URL\)" \]\]; then\n(.*?)\n  fi\n',
                       body, re.S)
    assert branch and "restore_etcd" in branch.group(1) and "ignore=(" in branch.group(1)
    assert body.count("ignore=(") == 2  # declared empty, set in that branch only
    assert "local ignore=()" in body
    assert body.index("failover.py claim") < body.index("restore_etcd") < body.index(
        "kubeadm init")


def test_the_restored_member_is_the_one_kubeadms_manifest_runs() -> None:
    """No nodeRegistration.name, so kubeadm names the member after the lowercased
    hostname, as the script does; the advertise address is the placeholder
    fill_node_values replaces, and the script reads it back from that file."""
    init, _ = _kubeadm()
    assert "name" not in init["nodeRegistration"]
    raw = rendered("production")["cloud-init/controller-init.yaml"]
    assert f"advertiseAddress: {NODE_PRIVATE_IP}" in raw
    body = _function("restore_etcd")
    assert "name=$(hostname)\n  name=${name,,}\n" in body
    assert _command(body, "ip=$(sed") == [
        "ip=$(sed", "-n", "s/^  advertiseAddress: //p", "$KUBEADM_CONFIG)"]
    booted = materialize(raw, boot=True)
    (kubeadm_yaml,) = [written(f) for f in yaml.safe_load(booted)["write_files"]
                       if f["path"] == "/etc/provision/kubeadm.yaml"]
    assert re.findall(r"^  advertiseAddress: (.*)$", kubeadm_yaml, re.M) == ["10.10.0.5"]


def test_etcdutl_runs_from_kubeadms_etcd_image_with_flags_it_has() -> None:
    body = _function("restore_etcd")
    assert ('image=$(kubeadm config images list --config "$KUBEADM_CONFIG" | grep /etcd:)'
            in body)
    assert 'retry 5 10 kubeadm config images pull --config "$KUBEADM_CONFIG"' in body
    argv = _command(body, "ctr")
    assert argv[:5] == ["ctr", "-n", "k8s.io", "run", "--rm"]
    assert argv[5:7] == ["--mount", "type=bind,src=$w,dst=$w,options=rbind:rw"]
    assert argv[7] == "$image"
    tool = argv.index("/usr/local/bin/etcdutl")
    assert argv[tool + 1:tool + 4] == ["snapshot", "restore", "$w/db"]
    options = argv[tool + 4:]
    flags = dict(zip(options[::2], options[1::2], strict=True))
    assert {f.removeprefix("--") for f in flags} <= ETCDUTL_RESTORE_FLAGS
    assert flags == {"--data-dir": "$w/data", "--name": "$name",
                     "--initial-cluster": "$name=https://$ip:2380",
                     "--initial-advertise-peer-urls": "https://$ip:2380"}
    # etcdutl refuses a data dir that exists: it restores into a new one inside the work
    # folder, which then moves into place.
    assert 'mv "$w/data/member" "$ETCD_DATA/"' in body
    assert re.search(r"^  local w=\$ETCD_DATA\.restore ", body, re.M)


def test_every_supported_minor_runs_an_etcd_image_with_etcdutl() -> None:
    assert set(ETCD_IMAGE) == set(SUPPORTED_MINORS), "read constants.go for the new minor"
    for minor, tag in ETCD_IMAGE.items():
        major_minor = tuple(int(p) for p in tag.split(".")[:2])
        assert major_minor >= ETCDUTL_SINCE, (minor, tag)


def test_the_key_and_url_never_reach_a_command_line() -> None:
    """openssl reads the password from a file (``-pass file:``) that only the script's own
    redirection writes; curl reads the URL as configuration on its standard input."""
    body = _function("restore_etcd")
    assert "restore_value KEY >\"$w/key\"" in body
    assert '-pass "file:$w/key"' in body
    assert re.search(r"restore_value URL \| sed 's/\.\*/url = \"&\"/' \|\n\s+curl .* -K - ",
                     body)
    assert "umask 077" in body
    assert "trap 'rm -rf \"$w\"' EXIT" in body


def _flags(argv: list[str]) -> set[str]:
    return {a.removeprefix("--").split("=")[0] for a in argv if a.startswith("--")}


def test_a_restore_inits_without_kubeadm_certs_and_uploads_them_last() -> None:
    """Normal init: --upload-certs as always. Restore: the upload-certs phase skipped by its
    name (--skip-phases, allowed with --config), then restore_nodes, which ends with that
    phase run alone with flags it has, its key from the configuration, never printed."""
    body = _function("init_control_plane")
    assert "certs=--upload-certs" in body
    assert re.findall(r"^ +certs=(.*)$", body, re.M) == ["--skip-phases=upload-certs"]
    argv = _command(body, "kubeadm")
    assert argv[:4] == ["kubeadm", "init", "--config", "$KUBEADM_CONFIG"]
    assert argv[4] == "$certs"
    assert body.index("certs=--skip-phases") < body.index("kubeadm init") < body.rindex(
        "restore_nodes")
    nodes = _function("restore_nodes")
    upload = _command(nodes, "retry 5 10 kubeadm init phase upload-certs")
    assert upload[3:7] == ["kubeadm", "init", "phase", "upload-certs"]
    assert _flags(upload) <= UPLOAD_CERTS_FLAGS
    assert {"upload-certs", "config", "skip-certificate-key-print"} <= _flags(upload)
    assert "certificate-key" not in _flags(upload), "the key stays in the 0600 file"
    mark = _command(nodes, "retry 5 10 kubeadm init phase mark-control-plane")
    assert _flags(mark) <= MARK_CONTROL_PLANE_FLAGS
    assert nodes.index("delete node") < nodes.index("systemctl restart kubelet") < nodes.index(
        "mark-control-plane") < nodes.index("upload-certs")
    init, _ = _kubeadm()
    assert init["certificateKey"], "upload-certs takes the key the joining nodes hold"


def test_stale_nodes_are_told_apart_by_the_kubelets_provider_id() -> None:
    """This droplet's providerID is the one its kubelet registers with (kubeadm.yaml's
    provider-id, the metadata service's droplet id put in by fill_node_values), in the
    CCM's digitalocean://<id> form, and the only digitalocean:// in that file, which is
    what the script reads. Only Nodes with kubeadm's control-plane label are listed."""
    raw = rendered("production")["cloud-init/controller-init.yaml"]
    booted = materialize(raw, boot=True)
    (kubeadm_yaml,) = [written(f) for f in yaml.safe_load(booted)["write_files"]
                       if f["path"] == "/etc/provision/kubeadm.yaml"]
    init = next(d for d in yaml.safe_load_all(kubeadm_yaml) if d["kind"] == "InitConfiguration")
    args = {a["name"]: a["value"] for a in init["nodeRegistration"]["kubeletExtraArgs"]}
    assert args["cloud-provider"] == "external"
    assert args["provider-id"] == PROVIDER_ID_PREFIX + "424242"
    assert re.findall(r"digitalocean://[0-9]*", kubeadm_yaml) == [args["provider-id"]]
    body = _function("restore_nodes")
    assert "own=$(grep -o 'digitalocean://[0-9]*' \"$KUBEADM_CONFIG\")" in body
    listing = _command(body, 'nodes=$(retry 10 10 "${kc[@]}" get')
    assert listing[listing.index("-l") + 1] == CONTROL_PLANE_LABEL
    assert "kc=(kubectl --kubeconfig /etc/kubernetes/admin.conf)" in body
    assert 'if [[ -n "$name" && "$id" != "$own" ]]; then' in body
    assert '"${kc[@]}" delete node "$name" --ignore-not-found' in body
