# For the bootstrap stage: where the API is and which droplets play which role.

output "api_endpoint" {
  description = "Address of the Kubernetes API (floating IP or load balancer IP)"
  value       = local.api_endpoint
}

output "controllers" {
  description = "Control-plane droplets in join order"
  value = [for d in digitalocean_droplet.controllers : {
    name        = d.name
    id          = d.id
    public_ipv4 = d.ipv4_address
    private_ip  = d.ipv4_address_private
  }]
}

output "workers" {
  description = "Worker droplets by key (<pool>-<n>-<generation>)"
  value = { for key, d in digitalocean_droplet.workers : key => {
    name        = d.name
    id          = d.id
    pool        = local.workers[key].pool
    public_ipv4 = d.ipv4_address
    private_ip  = d.ipv4_address_private
  } }
}

# For the failover agent and for `provision destroy`'s sweep.

output "reserved_ip" {
  description = "The floating IP in front of the API, empty in load_balancer mode"
  value       = one(digitalocean_reserved_ip.api[*].ip_address)
}

output "network" {
  description = "VPC and firewalls of the environment"
  value = {
    vpc_id              = digitalocean_vpc.network.id
    controller_firewall = digitalocean_firewall.controllers.id
    worker_firewall     = digitalocean_firewall.workers.id
    load_balancer_id    = one(digitalocean_loadbalancer.api[*].id)
  }
}

output "image" {
  description = "The droplet image as the API takes it: the file's slug or id, or the id of the snapshot image.tf resolved (the node autoscaler creates droplets of it)"
  value       = tostring(local.image)
}
