# The stable address of the Kubernetes API: a reserved (floating) IP that keepalived moves to a
# healthy control-plane node, or a DigitalOcean load balancer in front of all of them.

resource "digitalocean_reserved_ip" "api" {
  count  = var.api_endpoint == "floating_ip" ? 1 : 0
  region = var.region

  lifecycle {
    # The nodes assign the IP: the first control-plane node claims it at first boot, then
    # keepalived's MASTER takes it over. Terraform must never move it back (an assignment
    # resource would, on every apply after a failover).
    ignore_changes = [droplet_id]
  }

  # After the VPC, like the tags: a second state of the environment stops at the VPC.
  depends_on = [digitalocean_vpc.network]
}

# The load balancer is public: nodes reach the API through it from their public addresses,
# which exist only after the droplets do (whose user-data needs this address). provision
# therefore requires api_cidrs to include 0.0.0.0/0 in this mode; use floating_ip to restrict.
# Named <env>.api: no environment or app name contains a dot (provisioner/lb_names.py).
resource "digitalocean_loadbalancer" "api" {
  count       = var.api_endpoint == "load_balancer" ? 1 : 0
  name        = "${var.name}.api"
  region      = var.region
  vpc_uuid    = digitalocean_vpc.network.id
  droplet_tag = digitalocean_tag.controllers.name

  # TLS passes through: the API server terminates it with the cluster's own certificates.
  forwarding_rule {
    entry_protocol  = "tcp"
    entry_port      = 6443
    target_protocol = "tcp"
    target_port     = 6443
  }

  # A node leaves rotation when its API server stops accepting connections.
  healthcheck {
    protocol                 = "tcp"
    port                     = 6443
    check_interval_seconds   = 3
    response_timeout_seconds = 3
    unhealthy_threshold      = 2
    healthy_threshold        = 2
  }
}

locals {
  api_endpoint = (var.api_endpoint == "floating_ip"
    ? digitalocean_reserved_ip.api[0].ip_address
  : digitalocean_loadbalancer.api[0].ip)

  # Values spliced into user-data at apply time: never rendered to disk by provision. The
  # VPC's id is for the cloud controller manager (DO_CLUSTER_VPC_ID).
  user_data_values = merge(var.bootstrap_secrets, {
    api_endpoint = local.api_endpoint
    vpc_id       = digitalocean_vpc.network.id
  })
}
