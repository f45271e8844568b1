"""provision: one YAML file in, a highly available Kubernetes cluster on DigitalOcean out."""

__version__ = "0.1.0"
