"""Every artefact of an environment, as relative path -> text, ready for the writer."""

from __future__ import annotations

from provisioner.config.model import Environment
from provisioner.errors import UsageError
from provisioner.render import autoscaler_objects, backend, cloudinit, manifests, tfvars
from provisioner.render.markers import join, segments
from provisioner.resources import data_dir

# DigitalOcean refuses user-data over 64 KiB; keep room for the secrets spliced in later.
USER_DATA_LIMIT = 64 * 1024
# The most each late value takes: base64 of a PEM (an RSA 2048 key: 1,675-1,679 bytes, 2,240
# in base64; a CA certificate with a 20-character environment name 1,560-1,584 in base64,
# measured, with room to spare), an IPv4 address, a UUID, kubeadm's token, key and hash, a
# DigitalOcean token.
_LATE_VALUE_BYTES = {"ca_crt_b64": 1700, "ca_key_b64": 2240, "sa_key_b64": 2240,
                     "sa_pub_b64": 604, "front_proxy_ca_crt_b64": 1700,
                     "front_proxy_ca_key_b64": 2240, "etcd_ca_crt_b64": 1700,
                     "etcd_ca_key_b64": 2240, "api_endpoint": 15, "vpc_id": 36,
                     "bootstrap_token": 23, "certificate_key": 64, "ca_cert_hash": 71,
                     "failover_token": 128, "restore_key": 64, "restore_sha256": 64,
                     # A presigned Spaces URL: host, bucket, prefix, id and the X-Amz-*
                     # query; `provision restore` refuses a longer one (RESTORE_URL_BYTES).
                     "restore_url": 768}
RESTORE_URL_BYTES = _LATE_VALUE_BYTES["restore_url"]


def terraform_sources() -> dict[str, str]:
    """The module's .tf files, copied verbatim: they take all input from tfvars."""
    root = data_dir("terraform")
    return {f"terraform/{p.name}": p.read_text(encoding="utf-8")
            for p in sorted(root.glob("*.tf"))}


def estimate(user_data: cloudinit.UserData) -> int:
    """The most bytes the user-data can take once Terraform spliced the late values in."""
    refs = [p["ref"] for p in segments(user_data.text) if "ref" in p]
    size = len(join(segments(user_data.text), dict.fromkeys(refs, "")).encode())
    return size + sum(_LATE_VALUE_BYTES[ref] for ref in refs)


def _check_size(user_data: cloudinit.UserData) -> None:
    if estimate(user_data) > USER_DATA_LIMIT:
        raise UsageError(f"the user-data of {user_data.role} would exceed DigitalOcean's 64 KiB "
                         "limit: fewer or shorter node labels and taints in that pool")


def render_environment(env: Environment) -> dict[str, str]:
    """Render the Terraform module, cloud-init per role and manifests per app."""
    user_data = cloudinit.all_roles(env)
    for item in user_data:
        _check_size(item)
    files = terraform_sources()
    files["terraform/terraform.tfvars.json"] = tfvars.dumps(tfvars.tfvars(env, user_data))
    files["terraform/backend.tf.json"] = backend.dumps(env)
    for item in user_data:
        files[f"cloud-init/{item.role}.yaml"] = item.text
    for manifest in manifests.all_files(env):
        files[f"manifests/{manifest.name}"] = manifest.text
    # Applied by `up` (cluster/autoscaler.py) with the values Terraform made, not by deploy.
    if (scaling := autoscaler_objects.manifest(env)) is not None:
        files["autoscaler/manifests.yaml"] = scaling
    return files
