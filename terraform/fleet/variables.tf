# Every value comes from terraform.tfvars.json, written by provision
# (provisioner/gate/global_lb.py render_global_lb): never edit it by hand.

variable "name" {
  description = "The global load balancer's name: <fleet>.global."
  type        = string
}

variable "target_load_balancer_ids" {
  description = "The regional app load balancers traffic goes to: every region's but the evacuated ones."
  type        = list(string)

  validation {
    condition     = length(var.target_load_balancer_ids) > 0
    error_message = "A global load balancer needs at least one regional load balancer behind it."
  }
}

variable "target_protocol" {
  description = "How the global load balancer reaches the regional ones: http or https."
  type        = string
  default     = "http"
}

variable "target_port" {
  description = "The regional load balancers' port: 80 or 443."
  type        = number
  default     = 80
}

variable "domains" {
  description = "The domains the global load balancer answers for."
  type = list(object({
    name             = string
    is_managed       = bool
    certificate_name = optional(string)
  }))
  default = []
}

variable "cdn" {
  description = "Cache responses at DigitalOcean's edge."
  type        = bool
  default     = false
}
