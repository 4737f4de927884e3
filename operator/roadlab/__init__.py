"""Roadlab: Kubernetes-native hands-on lab environments."""
