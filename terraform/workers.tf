# Worker droplets, keyed "<pool>-<n>" so scaling a pool down removes exactly its highest numbers.

locals {
  workers = merge([
    for pool, spec in var.worker_pools : {
      for i in range(spec.count) : "${pool}-${i + 1}" => {
        pool = pool
        size = spec.size
      }
    }
  ]...)
}

# Replacement trigger per worker: the hash of its pool's secret-free cloud-init, so rotating a
# bootstrap token does not replace workers but a new Kubernetes version or label does.
# (replace_triggered_by may only index by each.key, hence one entry per worker.)
resource "terraform_data" "worker_config" {
  for_each = local.workers
  input    = var.node_config_hash["worker-${each.value.pool}"]
}

resource "digitalocean_droplet" "workers" {
  for_each = local.workers
  # "<env>-<pool>-<n>-<generation>": a replacement (new configuration) gets a new hostname, so
  # kubeadm can join it while the droplet it replaces is still a Ready node.
  name     = "${var.name}-${each.key}-${substr(var.node_config_hash["worker-${each.value.pool}"], 0, 5)}"
  region   = var.region
  image    = var.image
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
    create_before_destroy = true
    ignore_changes        = [user_data]
    replace_triggered_by  = [terraform_data.worker_config[each.key]]
  }
}
