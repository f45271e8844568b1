"""An image or SSH key as POST /v2/droplets takes it: an id is a number, a slug a string.

DigitalOcean's droplet create (digitalocean/openapi resources/droplets/models/
droplet_create.yml, copied in tests/data/digitalocean-openapi/) types ``image`` as a string
or an integer: "The image ID of a public or private image or the slug identifier for a
public image", so a string is a slug; ``ssh_keys`` items are "the IDs or fingerprints".
terraform-provider-digitalocean (digitalocean/droplet/resource_droplet.go, create) sends a
value that parses as a number (``strconv.Atoi``) as the id, anything else as the slug or
fingerprint; provision's own droplets (the autoscaler service's, the image build's) do the
same, so an environment's snapshot id or numeric key id means what it means to Terraform.

Standard library only: the autoscaler service imports it (render/autoscaler_code.py).
"""

from __future__ import annotations


def api_ref(value: str) -> int | str:
    """An all-digit value as the integer id, anything else unchanged (slug, fingerprint)."""
    return int(value) if value.isascii() and value.isdigit() else value
