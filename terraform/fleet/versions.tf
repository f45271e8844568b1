# The fleet's global load balancer: a root module of its own, apart from each region's
# environment module, because it needs a newer provider. glb_settings,
# target_load_balancer_ids and domains exist in the DigitalOcean provider from 2.37.0
# (its CHANGELOG, #1133); the environments stay on 2.34.x.
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    digitalocean = {
      source  = "digitalocean/digitalocean"
      version = "2.37.0"
    }
  }
}

provider "digitalocean" {}
