"""scaleset-image-operator: roll Azure VM Scale Sets onto a new OS image, one domain at a time.

The package is laid out in layers (see docs/architecture.md, "Layers"): ``core`` is pure, ``azure`` and ``kube`` are
thin adapters, ``simulator`` is an Azure Resource Manager stand-in used by tests and the demo.
"""

__version__ = "0.1.0"
