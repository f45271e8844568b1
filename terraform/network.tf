# The private network and the cloud firewalls around each role.

resource "digitalocean_vpc" "network" {
  name     = "${var.name}-vpc"
  region   = var.region
  ip_range = var.vpc_cidr
}

# Firewalls select droplets by tag, and rules may name tags as sources: tags must exist first.
# Tags live under "provision:<name>", a prefix users cannot use, so neither a user's own tag
# nor another environment (say "prod-worker" beside "prod") can pull droplets into a role.
#
# The VPC comes first: its name is unique in the account and its range cannot overlap
# another's, so creating it is the one step a second state of the same environment (two
# work folders racing, or one without the live environment's state) cannot also pass.
# Creating a tag that exists succeeds, and the loser's later destroy would delete the
# live droplets' tags; after the VPC, the loser stops before it has created anything.
resource "digitalocean_tag" "cluster" {
  name       = "provision:${var.name}"
  depends_on = [digitalocean_vpc.network]
}

resource "digitalocean_tag" "controllers" {
  name       = "provision:${var.name}:controller"
  depends_on = [digitalocean_vpc.network]
}

resource "digitalocean_tag" "workers" {
  name       = "provision:${var.name}:worker"
  depends_on = [digitalocean_vpc.network]
}

locals {
  # Rules carry tag *names*; resolve them through the tag resources so ordering is explicit.
  tag_names = {
    cluster     = digitalocean_tag.cluster.name
    controllers = digitalocean_tag.controllers.name
    workers     = digitalocean_tag.workers.name
  }
}

resource "digitalocean_firewall" "controllers" {
  name = "${var.name}-controllers"
  tags = [digitalocean_tag.controllers.name]

  # One inbound rule per entry of var.firewall.controllers; each entry's `purpose` says why.
  dynamic "inbound_rule" {
    for_each = var.firewall["controllers"]
    content {
      protocol         = inbound_rule.value.protocol
      port_range       = inbound_rule.value.port_range
      source_addresses = inbound_rule.value.source_addresses
      source_tags      = [for t in inbound_rule.value.source_tags : local.tag_names[t]]
    }
  }

  # Nodes fetch packages and images and call the DigitalOcean API.
  dynamic "outbound_rule" {
    for_each = ["tcp", "udp"]
    content {
      protocol              = outbound_rule.value
      port_range            = "1-65535"
      destination_addresses = ["0.0.0.0/0", "::/0"]
    }
  }

  # Path MTU discovery and ping.
  outbound_rule {
    protocol              = "icmp"
    destination_addresses = ["0.0.0.0/0", "::/0"]
  }
}

resource "digitalocean_firewall" "workers" {
  name = "${var.name}-workers"
  tags = [digitalocean_tag.workers.name]

  # One inbound rule per entry of var.firewall.workers; each entry's `purpose` says why.
  dynamic "inbound_rule" {
    for_each = var.firewall["workers"]
    content {
      protocol         = inbound_rule.value.protocol
      port_range       = inbound_rule.value.port_range
      source_addresses = inbound_rule.value.source_addresses
      source_tags      = [for t in inbound_rule.value.source_tags : local.tag_names[t]]
    }
  }

  # Nodes fetch packages and images and reach the API through its public endpoint.
  dynamic "outbound_rule" {
    for_each = ["tcp", "udp"]
    content {
      protocol              = outbound_rule.value
      port_range            = "1-65535"
      destination_addresses = ["0.0.0.0/0", "::/0"]
    }
  }

  # Path MTU discovery and ping.
  outbound_rule {
    protocol              = "icmp"
    destination_addresses = ["0.0.0.0/0", "::/0"]
  }
}
