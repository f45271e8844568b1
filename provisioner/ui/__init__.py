"""Output for people (stderr messages, readable plans) and for machines (JSON on stdout)."""
