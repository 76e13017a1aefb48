"""ARM errors the simulator answers with, in the CloudError shape real Azure sends.

Raised anywhere in the simulator's world model; the HTTP layer (``server``) turns them into responses.
Not an error hierarchy for the operator: the operator classifies the SDK's exceptions, never these.
"""

from __future__ import annotations

from typing import Any


class ArmError(Exception):
    """An ARM error answer: HTTP status, ``error.code``, ``error.message`` and optional extras."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        details: list[dict[str, Any]] | None = None,
        innererror: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.details = details
        self.innererror = innererror
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target is not None:
            error["target"] = self.target
        if self.details is not None:
            error["details"] = self.details
        if self.innererror is not None:
            error["innererror"] = self.innererror
        return {"error": error}


def not_found_scale_set(resource_group: str, name: str) -> ArmError:
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource 'Microsoft.Compute/virtualMachineScaleSets/{name}' under resource group "
        f"'{resource_group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def invalid_parameter(message: str, target: str | None = None) -> ArmError:
    return ArmError(400, "InvalidParameter", message, target=target)


def operation_not_allowed(message: str, status: int = 409) -> ArmError:
    return ArmError(status, "OperationNotAllowed", message)
