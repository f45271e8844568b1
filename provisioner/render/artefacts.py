"""Every artefact of an environment, as relative path -> text, ready for the writer."""

from __future__ import annotations

from provisioner.config.model import Environment
from provisioner.errors import UsageError
from provisioner.render import backend, cloudinit, manifests, tfvars
from provisioner.render.markers import join, segments
from provisioner.resources import data_dir

# DigitalOcean refuses user-data over 64 KiB; keep room for the secrets spliced in later.
USER_DATA_LIMIT = 64 * 1024
_LATE_VALUE_ALLOWANCE = 4096


def terraform_sources() -> dict[str, str]:
    """The module's .tf files, copied verbatim: they take all input from tfvars."""
    root = data_dir("terraform")
    return {f"terraform/{p.name}": p.read_text(encoding="utf-8")
            for p in sorted(root.glob("*.tf"))}


def _check_size(user_data: cloudinit.UserData) -> None:
    refs = [p for p in segments(user_data.text) if "ref" in p]
    estimate = len(join(segments(user_data.text), {p["ref"]: "" for p in refs}).encode())
    if estimate + _LATE_VALUE_ALLOWANCE * bool(refs) > USER_DATA_LIMIT:
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
    return files
