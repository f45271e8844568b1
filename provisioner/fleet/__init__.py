"""Several environments (one cluster per region) rolled out together: the fleet file, the
fleet-wide commands' cores, the gated rollout, evacuation records and the availability of a
fleet."""
