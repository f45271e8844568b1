output "global_load_balancer_id" {
  value = digitalocean_loadbalancer.global.id
}

output "global_load_balancer_ip" {
  value = digitalocean_loadbalancer.global.ip
}

output "target_load_balancer_ids" {
  value = var.target_load_balancer_ids
}
