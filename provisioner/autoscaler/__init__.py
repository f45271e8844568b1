"""The gRPC service behind the cluster-autoscaler's ``externalgrpc`` cloud provider."""
