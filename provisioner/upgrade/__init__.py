"""Kubernetes upgrades of a running cluster: what must hold before one starts (preflight.py,
removed_apis.py) and the in-place orchestration (orchestrate.py, its seams and state)."""
