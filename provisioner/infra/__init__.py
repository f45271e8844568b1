"""The infrastructure stage: Terraform driven from Python, its events shown as progress."""
