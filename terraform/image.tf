# The droplet image: a slug or id as given, or a snapshot `provision image build` made,
# looked up by its exact name in the environment's region (a snapshot exists only in the
# regions it was made in or copied to). most_recent: two snapshots may share a name.

data "digitalocean_droplet_snapshot" "node_image" {
  count       = var.image_snapshot != "" ? 1 : 0
  name        = var.image_snapshot
  region      = var.region
  most_recent = true
}

locals {
  image = var.image_snapshot != "" ? data.digitalocean_droplet_snapshot.node_image[0].id : var.image
  # What the file says (digitalocean.image), known before any lookup: worker generations
  # hash this, as provision computes them offline (render/names.py worker_generation).
  image_reference = var.image_snapshot != "" ? "snapshot:${var.image_snapshot}" : var.image
}
