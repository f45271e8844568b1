# Files every resource under the configured DigitalOcean project, when one is named.

data "digitalocean_project" "this" {
  count = var.project == "" ? 0 : 1
  name  = var.project
}

resource "digitalocean_project_resources" "this" {
  count   = var.project == "" ? 0 : 1
  project = data.digitalocean_project.this[0].id
  resources = concat(
    digitalocean_droplet.controllers[*].urn,
    [for w in digitalocean_droplet.workers : w.urn],
    digitalocean_reserved_ip.api[*].urn,
    digitalocean_loadbalancer.api[*].urn,
  )
}
