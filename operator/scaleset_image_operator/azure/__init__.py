"""The thin adapter between the operator and Azure Resource Manager.

``convert`` turns ARM JSON (the SDK's models are mappings of it) into the core's observation values. The
gateway on ``azure.mgmt.compute.aio`` that makes the calls builds on it. Nothing here decides anything: the
planner in ``core`` does.
"""
