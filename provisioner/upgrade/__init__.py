"""Kubernetes upgrades of a running cluster: the preflight and the in-place orchestration."""
