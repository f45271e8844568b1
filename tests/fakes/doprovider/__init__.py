"""A test double of the DigitalOcean Terraform provider (v2.34.1 schema), in Python.

Terraform runs it like the real provider (see the `terraform-provider-digitalocean`
wrapper and tests/oracles/terraform.py). It serves the real provider's schema, so
`terraform validate` judges modules exactly as with the real provider, and simulates the
DigitalOcean account in a JSON file (`cloud.py`) so plan/apply/destroy work offline.

Environment variables:
  DO_SIM_STATE       path of the simulated account's JSON file (default ~/.do-sim/state.json)
  DO_SIM_FAIL        failure injection rules, e.g. digitalocean_droplet:prod-cp-2 (faults.py)
  DO_SIM_LATENCY_MS  sleep per create, to make parallelism observable (faults.py)
  DO_SIM_PROJECTS    comma-separated project names that exist in the account
  DO_SIM_SCHEMA      alternative schema dump (default tests/data/...-2.34.1.json)
  DO_SIM_RPC_LOG     file every RPC appends "name start end" to (benchmarks: the fake's cost)
"""

VERSION = "2.34.1"
