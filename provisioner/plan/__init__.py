"""What an environment would create: the offline plan, and later the Terraform diff."""
