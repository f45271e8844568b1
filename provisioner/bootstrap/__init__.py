"""Cluster bootstrap: PKI and tokens made up front, kubeconfig, readiness."""
