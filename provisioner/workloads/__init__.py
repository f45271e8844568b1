"""Workloads: declarative apply, prune, rollout waits, strategies, deploy windows."""
