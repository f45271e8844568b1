# Every value arrives through terraform.tfvars.json, written by `provision render`.

variable "name" {
  type        = string
  description = "Environment name, prefix of every resource and the cluster name (e.g. prod)"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,18}[a-z0-9])?$", var.name))
    error_message = "The name must be a DNS-1123 label of at most 20 characters."
  }
}

variable "region" {
  type        = string
  description = "DigitalOcean region (e.g. nyc3, fra1, ams3)"
}

variable "image" {
  type        = string
  description = "Droplet image slug or id (e.g. ubuntu-24-04-x64)"
  default     = "ubuntu-24-04-x64"
}

variable "image_snapshot" {
  type        = string
  description = "Name of a droplet snapshot made by `provision image build` (used instead of image when set)"
  default     = ""
}

variable "ssh_keys" {
  type        = list(string)
  description = "SSH key fingerprints or ids allowed to log in as root (e.g. [\"3b:16:...:fa\"])"
}

variable "tags" {
  type        = list(string)
  description = "Extra tags put on every droplet (e.g. [\"team-platform\"])"
  default     = []
}

variable "vpc_cidr" {
  type        = string
  description = "Private range of the environment's VPC (e.g. 10.10.0.0/16)"
}

variable "project" {
  type        = string
  description = "DigitalOcean project to file resources under, empty for the default (e.g. \"Acme Production\")"
  default     = ""
}

variable "controller_count" {
  type        = number
  description = "Number of control-plane droplets (1, 3 or 5: etcd needs an odd count)"
  default     = 3

  validation {
    condition     = contains([1, 3, 5], var.controller_count)
    error_message = "controller_count must be 1, 3 or 5."
  }
}

variable "controller_size" {
  type        = string
  description = "Droplet size of control-plane nodes (e.g. s-2vcpu-4gb)"
}

variable "api_endpoint" {
  type        = string
  description = "How the API is reached: floating_ip (keepalived moves it) or load_balancer"
  default     = "floating_ip"

  validation {
    condition     = contains(["floating_ip", "load_balancer"], var.api_endpoint)
    error_message = "api_endpoint must be floating_ip or load_balancer."
  }
}

variable "worker_pools" {
  type = map(object({
    count = number
    size  = string
  }))
  description = "Worker pools by name (e.g. {general = {count = 3, size = \"s-4vcpu-8gb\"}})"
}

variable "worker_instances" {
  type = map(object({
    pool  = string
    size  = string
    image = string
  }))
  description = "Worker droplets by key (<pool>-<n>-<generation>) for one step of a rolling replacement; null: derived from worker_pools"
  default     = null
}

variable "firewall" {
  type = map(list(object({
    purpose          = string
    protocol         = string
    port_range       = optional(string)
    source_addresses = list(string)
    source_tags      = list(string)
  })))
  description = "Inbound rules by role (controllers, workers); each rule says its purpose"
}

variable "user_data" {
  type = map(list(object({
    text = optional(string)
    ref  = optional(string)
  })))
  description = "Cloud-init per role (controller-init, controller-join, worker-<pool>) as literal text segments and references to values known at apply time (api_endpoint, secrets)"
}

variable "node_config_hash" {
  type        = map(string)
  description = "Hash of each role's secret-free cloud-init; part of a worker's generation, so a change gives new worker keys"
}

variable "bootstrap_secrets" {
  type        = map(string)
  description = "Values that must not be rendered to disk (CA, tokens), passed at apply time from the 0600 work folder"
  sensitive   = true
  default     = {}
}

variable "cluster_initialised" {
  type        = bool
  description = "Whether the cluster's API has answered (set by provision at plan time): then the first control-plane node joins instead of running kubeadm init"
  default     = false
}

variable "restore" {
  type        = bool
  description = "Set by `provision restore` only: the first control-plane node restores etcd from the snapshot named in its user-data, then runs kubeadm init"
  default     = false
}
