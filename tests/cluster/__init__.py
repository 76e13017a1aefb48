"""Cluster tests: a real kube-apiserver + etcd, the operator as a process with its service-account token."""
