"""The Kubernetes side of the operator, without kopf: resource names, custom-resource bodies as the
reconciler's ``Resource``, status patches, label selectors, and the Lease-based leader election."""
