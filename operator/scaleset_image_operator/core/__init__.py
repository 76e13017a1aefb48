"""The pure core: value types, spec parsing, the rollout planner, conditions and the status document.

No I/O, no clock, no kopf, Kubernetes or Azure imports (checked by import-linter): everything here takes
values, including ``now``, and returns values, so that it can be tested by tables and properties.
Neighbours: ``azure`` converts SDK objects into ``observation`` values; ``reconciler`` feeds them to
``planner.plan`` and writes what ``status.build_status`` returns.
"""

from .images import Image, ImageKind
from .observation import Health, InstanceView, OperationState, OperationView, ScaleSetView
from .planner import (
    Action,
    Batch,
    Controls,
    Decision,
    EnforceManualUpgradePolicy,
    InFlight,
    Phase,
    Progress,
    UpdateModel,
    UpgradeInstances,
    plan,
    plan_batches,
)
from .spec import Problem, RolloutPolicy, ScaleSetImageSpec, ScaleSetRef, parse_spec

__all__ = [
    "Action",
    "Batch",
    "Controls",
    "Decision",
    "EnforceManualUpgradePolicy",
    "Health",
    "Image",
    "ImageKind",
    "InFlight",
    "InstanceView",
    "OperationState",
    "OperationView",
    "Phase",
    "Problem",
    "Progress",
    "RolloutPolicy",
    "ScaleSetImageSpec",
    "ScaleSetRef",
    "ScaleSetView",
    "UpdateModel",
    "UpgradeInstances",
    "parse_spec",
    "plan",
    "plan_batches",
]
