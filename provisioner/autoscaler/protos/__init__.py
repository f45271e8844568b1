"""The cluster-autoscaler's externalgrpc protocol and Kubernetes' Node message, vendored.

README.md here says where each .proto comes from; generate.py makes the Python beside them.
"""
