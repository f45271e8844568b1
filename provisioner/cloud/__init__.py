"""The DigitalOcean API (python-digitalocean): preflight checks, later failover and sweeps."""
