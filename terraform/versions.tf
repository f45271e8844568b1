# Only the DigitalOcean provider: keys, tokens and certificates are made by provision in
# Python, so no tls/random providers (and their secrets in state) are needed.
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    digitalocean = {
      source  = "digitalocean/digitalocean"
      version = "~> 2.34"
    }
  }
}
