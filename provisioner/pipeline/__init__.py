"""The stages run in order: prepare (config + render), infrastructure, then the cluster."""
