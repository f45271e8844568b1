"""Kubernetes upgrades of a running cluster: what must hold before one starts (preflight.py)
and which API versions each minor stops serving (removed_apis.py)."""
