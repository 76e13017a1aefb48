# Test control plane (kube-apiserver + etcd) for tests against a real API server; see tools/controlplane/README.md.
# Prints, as its last line, the folder holding both binaries (usable as KUBEBUILDER_ASSETS).
.PHONY: controlplane
controlplane:
	@bash tools/controlplane/build.sh
