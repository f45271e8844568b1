"""What the restoring first control-plane node relies on in kubeadm, etcd and containerd.

Checked on the RENDERED production controller-init user-data: its bootstrap script (as the
node gets it) and its kubeadm configuration. tests/integration/test_restore_node.py runs
the same functions against a real etcd and shows what they do (order, markers, reruns,
secrets off command lines); this file pins the upstream facts they stand on, and each test
fails when the script or configuration contradicts one of them.

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
  ``etcd.local.dataDir``, and ``--initial-cluster <name>=<that URL>``, each replaced by an
  ``etcd.local.extraArgs`` entry of its name (``kubeadmutil.ArgumentsToCommand(
  defaultArguments, cfg.Etcd.Local.ExtraArgs)``). With a data dir already holding a
  member, etcd ignores the initial-cluster flags and keeps the membership the restore
  wrote, so that must be the same name and peer URL.
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
* etcd-io/etcd ``etcdutl/etcdutl/snapshot_command.go`` at v3.6.9 (commit 85651fa5):
  ``snapshot restore <filename> --data-dir {output dir} [options]`` with the flags in
  ETCDUTL_RESTORE_FLAGS (``skip-hash-check`` and ``mark-compacted`` are booleans, the rest
  take a value); ``SnapshotRestoreCommandFunc`` exits with ExitBadArgs unless
  ``--bump-revision`` > 0 and ``--mark-compacted`` come together or neither is given;
  ``etcdutl/snapshot/v3_snapshot.go``: it refuses a data dir that exists and is not empty.
* Revisions after a restore: etcd-io/etcd#16028 (for kubernetes/kubernetes#118501) shows a
  plain restore starts again from the snapshot's revision, lower than what the kept
  workers' kubelets and every informer last saw, so their watches silently miss events;
  PR #16029 added ``--bump-revision``/``--mark-compacted`` (etcd v3.6.0, backported to
  etcdutl v3.5.10, PR #16165, and etcdctl v3.4.27, PR #16193: CHANGELOG-3.4/3.5/3.6.md).
  etcd-io/website ``content/en/docs/v3.6/op-guide/recovery.md`` (commit 82459793),
  "Restoring with revision bump": bumping by 1'000'000'000 covers a week-old snapshot at
  under 1500 writes a second; for Kubernetes controllers ``--mark-compacted`` must go with
  it so every watch is terminated and informer caches are invalidated; its full invocation
  is ``etcdutl snapshot restore snapshot.db --bump-revision 1000000000 --mark-compacted
  --data-dir output-dir``.
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

# etcd v3.6.9 etcdutl/etcdutl/snapshot_command.go, NewSnapshotRestoreCommand: flag -> takes
# a value (False: a boolean flag).
ETCDUTL_RESTORE_FLAGS = {"data-dir": True, "wal-dir": True, "initial-cluster": True,
                         "initial-cluster-token": True, "initial-advertise-peer-urls": True,
                         "name": True, "skip-hash-check": False,
                         "initial-memory-map-size": True, "bump-revision": True,
                         "mark-compacted": False}
# etcd's disaster-recovery guide (v3.6 op-guide/recovery.md): a week of writes under 1500/s.
DOCUMENTED_REVISION_BUMP = 1_000_000_000
# constants.go SupportedEtcdVersion (see the module docstring; 1.37 not read, inferred).
ETCD_IMAGE = {"1.35": "3.6.9-0", "1.36": "3.6.9-0", "1.37": "3.6.9-0"}
ETCDUTL_SINCE = (3, 5)  # etcd v3.5.0 is the first image with etcdutl
BUMP_REVISION_SINCE = (3, 5, 10)  # etcdutl's --bump-revision/--mark-compacted (PR #16165)
# kubeadm phases/init/uploadcerts.go and markcontrolplane.go, InheritFlags.
UPLOAD_CERTS_FLAGS = {"config", "kubeconfig", "upload-certs", "certificate-key",
                      "skip-certificate-key-print", "dry-run"}
MARK_CONTROL_PLANE_FLAGS = {"node-name", "config"}
UPLOAD_CERTS_PHASE = "upload-certs"  # NewUploadCertsPhase's Name
# The digitalocean CCM's providerIDPrefix (do/droplets.go).
PROVIDER_ID_PREFIX = "digitalocean://"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


def _files(boot: bool = False) -> dict[str, str]:
    config = yaml.safe_load(materialize(rendered("production")["cloud-init/controller-init.yaml"],
                                        boot=boot))
    return {str(f["path"]): written(f) for f in config["write_files"]}


def _kubeadm(boot: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    init, cluster = [d for d in yaml.safe_load_all(_files(boot)["/etc/provision/kubeadm.yaml"])
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


def _flags(argv: list[str]) -> set[str]:
    return {a.removeprefix("--").split("=")[0] for a in argv if a.startswith("--")}


def _etcdutl_restore() -> dict[str, str | None]:
    """The options the script gives ``etcdutl snapshot restore``, parsed as etcdutl's flag
    set does (a boolean flag takes no value); an unknown flag fails here as it fails there."""
    argv = _command(_function("restore_etcd"), "ctr")
    tool = argv.index("/usr/local/bin/etcdutl")
    assert argv[tool + 1:tool + 3] == ["snapshot", "restore"]
    options, given = argv[tool + 4:], {}
    while options:
        flag = options.pop(0)
        name = flag.removeprefix("--")
        assert flag.startswith("--") and name in ETCDUTL_RESTORE_FLAGS, f"etcdutl has no {flag}"
        given[name] = options.pop(0) if ETCDUTL_RESTORE_FLAGS[name] else None
    return given


def test_the_preflight_exception_is_kubeadms_check_of_the_etcd_data_dir() -> None:
    """The check named after etcd.local.dataDir is the one waived, and the script restores
    into that directory."""
    _, cluster = _kubeadm()
    data_dir = cluster["etcd"]["local"]["dataDir"]
    check = "DirAvailable-" + data_dir.replace("/", "-")
    assert re.findall(r"--ignore-preflight-errors=(\S+)\)", _function("init_control_plane")) == [
        check]
    assert re.search(rf"^readonly ETCD_DATA=\$\{{PROVISION_ROOT:-\}}{data_dir}$",
                     _files()[BOOTSTRAP], re.M)


def test_kubeadm_names_the_member_after_the_hostname_and_the_private_address() -> None:
    """No nodeRegistration.name, so kubeadm names the member after the lowercased hostname
    (what tests/integration/test_restore_node.py's member name stands on), and the peer URL's
    address is the node's private IP once fill_node_values ran."""
    raw = rendered("production")["cloud-init/controller-init.yaml"]
    assert f"advertiseAddress: {NODE_PRIVATE_IP}" in raw
    init, cluster = _kubeadm(boot=True)
    assert "name" not in init["nodeRegistration"]
    assert init["localAPIEndpoint"]["advertiseAddress"] == "10.10.0.5"
    # Nothing overrides the member flags getEtcdCommand derives from those.
    extra = {a["name"] for a in cluster["etcd"]["local"].get("extraArgs", [])}
    assert not extra & {"name", "initial-cluster", "initial-advertise-peer-urls",
                        "listen-peer-urls", "data-dir"}


def test_etcdutl_runs_from_kubeadms_etcd_image_in_the_cri_namespace() -> None:
    """etcdutl where etcd's image has it, in the image kubeadm pulled into containerd's CRI
    namespace, with flags etcdutl has."""
    argv = _command(_function("restore_etcd"), "ctr")
    assert argv[:3] == ["ctr", "-n", "k8s.io"]
    assert "/usr/local/bin/etcdutl" in argv
    assert set(_etcdutl_restore()) <= set(ETCDUTL_RESTORE_FLAGS)


def test_revisions_never_go_back_after_a_restore() -> None:
    """--bump-revision at least the documented billion and --mark-compacted with it (etcdutl
    refuses either alone), so the kept workers' and controllers' watches are cut off and
    list again instead of missing events."""
    given = _etcdutl_restore()
    assert "bump-revision" in given and "mark-compacted" in given, given
    assert int(given["bump-revision"] or 0) >= DOCUMENTED_REVISION_BUMP


def test_every_supported_minor_runs_an_etcd_image_with_etcdutl_and_the_bump() -> None:
    assert set(ETCD_IMAGE) == set(SUPPORTED_MINORS), "read constants.go for the new minor"
    for minor, tag in ETCD_IMAGE.items():
        version = tuple(int(p) for p in tag.split("-")[0].split("."))
        assert version[:2] >= ETCDUTL_SINCE, (minor, tag)
        assert version >= BUMP_REVISION_SINCE, (minor, tag)


def test_the_upload_certs_phase_is_skipped_by_its_name_and_run_with_its_flags() -> None:
    """The phase a restore's init skips is kubeadm's upload-certs; run alone later it gets
    only flags it inherits, its key from the configuration (which has one), never printed;
    mark-control-plane likewise."""
    assert re.findall(r"--skip-phases=(\S+)", _function("init_control_plane")) == [
        UPLOAD_CERTS_PHASE]
    nodes = _function("restore_nodes")
    upload = _command(nodes, "retry 5 10 kubeadm init phase upload-certs")
    assert _flags(upload) <= UPLOAD_CERTS_FLAGS
    assert {"upload-certs", "skip-certificate-key-print"} <= _flags(upload)
    mark = _command(nodes, "retry 5 10 kubeadm init phase mark-control-plane")
    assert _flags(mark) <= MARK_CONTROL_PLANE_FLAGS
    init, _ = _kubeadm()
    assert init["certificateKey"], "upload-certs takes the key the joining nodes hold"


def test_stale_nodes_are_told_apart_by_the_kubelets_provider_id() -> None:
    """This droplet's providerID is the one its kubelet registers with (kubeadm.yaml's
    provider-id, the metadata service's droplet id put in by fill_node_values), in the
    CCM's digitalocean://<id> form, and the only digitalocean:// in that file, which is
    what the script reads. Only Nodes with kubeadm's control-plane label are listed."""
    kubeadm_yaml = _files(boot=True)["/etc/provision/kubeadm.yaml"]
    init, _ = _kubeadm(boot=True)
    args = {a["name"]: a["value"] for a in init["nodeRegistration"]["kubeletExtraArgs"]}
    assert args["cloud-provider"] == "external"
    assert args["provider-id"] == PROVIDER_ID_PREFIX + "424242"
    assert re.findall(r"digitalocean://[0-9]*", kubeadm_yaml) == [args["provider-id"]]
    listing = _command(_function("restore_nodes"), 'nodes=$(retry 10 10 "${kc[@]}" get')
    assert listing[listing.index("-l") + 1] == CONTROL_PLANE_LABEL
