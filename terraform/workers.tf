# Worker droplets, keyed "<pool>-<n>-<generation>": the generation is a hash of what a
# replacement must carry (the pool's secret-free cloud-init, its size, the image), so a
# change to a pool plans creates of new keys and deletes of old ones, never an in-place
# replacement. provision (pipeline/rolling.py) applies such a change in steps through
# `worker_instances`: new droplets added while the old stay, the old drained, then removed.
# Scaling a pool down removes exactly its highest numbers.

locals {
  worker_generation = {
    for pool, spec in var.worker_pools : pool => substr(sha256(jsonencode([
      var.node_config_hash["worker-${pool}"], spec.size, local.image_reference,
    ])), 0, 5)
  }
  derived_workers = merge([
    for pool, spec in var.worker_pools : {
      for i in range(spec.count) : "${pool}-${i + 1}-${local.worker_generation[pool]}" => {
        pool  = pool
        size  = spec.size
        image = local.image
      }
    }
  ]...)
  workers = var.worker_instances != null ? var.worker_instances : local.derived_workers
}

resource "digitalocean_droplet" "workers" {
  for_each = local.workers
  # "<env>-<pool>-<n>-<generation>": a replacement (new configuration) gets a new hostname, so
  # kubeadm can join it while the droplet it replaces is still a Ready node.
  name     = "${var.name}-${each.key}"
  region   = var.region
  image    = each.value.image
  size     = each.value.size
  vpc_uuid = digitalocean_vpc.network.id
  ssh_keys = var.ssh_keys
  tags = concat(
    [digitalocean_tag.cluster.name, digitalocean_tag.workers.name, "provision:${var.name}:pool:${each.value.pool}"],
    var.tags,
  )
  user_data = join("", [
    for segment in var.user_data["worker-${each.value.pool}"] :
    segment.text != null ? segment.text : local.user_data_values[segment.ref]
  ])
  monitoring        = true
  graceful_shutdown = true
  droplet_agent     = false
  ipv6              = false
  backups           = false
  resize_disk       = false

  lifecycle {
    # The user-data of a running worker is history: a new configuration is a new key. So is
    # its image: another digitalocean.image is a new key; a snapshot rebuilt under the same
    # name (another id) is for droplets created from now on, never an in-place replacement.
    ignore_changes = [user_data, image]
  }
}
