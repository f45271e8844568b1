# One GLOBAL load balancer in front of the regions' app load balancers. Evacuating a
# region takes its load balancer out of target_load_balancer_ids (an in-place update);
# restoring puts it back. No region: a global load balancer has none (provider #1046).
resource "digitalocean_loadbalancer" "global" {
  name                     = var.name
  type                     = "GLOBAL"
  target_load_balancer_ids = var.target_load_balancer_ids

  glb_settings {
    target_protocol = var.target_protocol
    target_port     = var.target_port

    cdn {
      is_enabled = var.cdn
    }
  }

  dynamic "domains" {
    for_each = var.domains
    content {
      name             = domains.value.name
      is_managed       = domains.value.is_managed
      certificate_name = domains.value.certificate_name
    }
  }
}
