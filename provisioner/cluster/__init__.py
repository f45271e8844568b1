"""Operations on a running cluster's nodes through the Kubernetes API (day-2 work)."""
