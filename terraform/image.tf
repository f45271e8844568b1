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
}
