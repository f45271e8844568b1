# Control-plane droplets: the first runs `kubeadm init` until the cluster has been initialised;
# after that, with several control planes, every one joins, the first included, so a replaced
# cp-1 never starts a second, empty cluster. A lone control plane has no one to join: provision
# refuses to replace it on a running cluster. (user_data is in ignore_changes: the switch
# replaces no droplet.)

locals {
  # `provision restore` replaces every control-plane droplet and has the first one rebuild
  # etcd from a snapshot before `kubeadm init` (the restore_* values in its user-data).
  first_initialises = var.restore || !(var.cluster_initialised && var.controller_count > 1)
  controller_roles = [
    for i in range(var.controller_count) :
    i == 0 && local.first_initialises ? "controller-init" : "controller-join"
  ]
}

resource "digitalocean_droplet" "controllers" {
  count    = var.controller_count
  name     = "${var.name}-cp-${count.index + 1}"
  region   = var.region
  image    = local.image
  size     = var.controller_size
  vpc_uuid = digitalocean_vpc.network.id
  ssh_keys = var.ssh_keys
  tags = concat(
    [digitalocean_tag.cluster.name, digitalocean_tag.controllers.name],
    var.tags,
  )
  # Literal text and late-bound values joined in order; nothing here is parsed as a template.
  user_data = join("", [
    for segment in var.user_data[local.controller_roles[count.index]] :
    segment.text != null ? segment.text : local.user_data_values[segment.ref]
  ])
  monitoring        = true
  graceful_shutdown = true
  droplet_agent     = false
  ipv6              = false
  backups           = false
  resize_disk       = false

  lifecycle {
    # Control-plane nodes hold etcd members: a template change or a rotated bootstrap token must
    # never replace them. Replacing one is a deliberate operation.
    ignore_changes = [user_data, image, ssh_keys]
  }
}
