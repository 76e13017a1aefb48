"""Azure failures, classified where they are raised (the SDK's exceptions never leave the adapter).

    AzureProblem                      what went wrong, as a Degraded reason and a sentence
    ├── Transient                     try again after ``retry_after`` seconds; nothing is known to be wrong
    │   ├── Throttled                 429: Azure asked us to wait (AzureThrottled)
    │   ├── BudgetSpent               the operator's own request budget is spent for now (RequestBudgetSpent)
    │   ├── Unavailable               5xx, connection reset, timeout (AzureUnavailable)
    │   ├── Conflict                  409: another operation holds the scale set or instance (AzureConflict)
    │   └── PreconditionFailed        412: the model changed since it was read; observe again (ModelChanged)
    └── Permanent                     will not get better until a person changes something
        ├── NotFound                  the scale set does not exist (ScaleSetNotFound)
        ├── AuthFailed                401/403, or no token could be had (AuthFailed)
        ├── ImageRejected             Azure refused the image: unknown (ImageNotFound) or not allowed in
        │                             place (ImageChangeNotAllowed)
        └── BadRequest                any other 4xx (AzureRejected)

Handlers map ``Transient`` to a requeue after ``retry_after`` and ``Permanent`` to a Degraded condition.
"""

from __future__ import annotations

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

IMAGE_CODES = frozenset(
    {"PlatformImageNotFound", "ImageNotFound", "GalleryImageNotFound", "VhdNotFound", "InvalidParameter"}
)


class AzureProblem(Exception):
    reason = "AzureError"

    def __init__(
        self, message: str, *, code: str = "", status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.retry_after = retry_after


class Transient(AzureProblem):
    reason = "AzureUnavailable"


class Throttled(Transient):
    reason = "AzureThrottled"


class BudgetSpent(Transient):
    """The operator's own per-policy request budget (``budget.RequestBudget``) is spent: Azure did not throttle."""

    reason = "RequestBudgetSpent"


class Unavailable(Transient):
    reason = "AzureUnavailable"


class TokenRefused(Transient):
    """Azure refused an access token that should still be valid (revoked early); a new one is requested."""

    reason = "AzureTokenRefused"


class Conflict(Transient):
    reason = "AzureConflict"


class PreconditionFailed(Transient):
    reason = "ModelChanged"


class Permanent(AzureProblem):
    reason = "AzureRejected"


class NotFound(Permanent):
    reason = "ScaleSetNotFound"


class AuthFailed(Permanent):
    reason = "AuthFailed"


class ImageRejected(Permanent):
    reason = "ImageNotFound"


class ImageChangeRejected(ImageRejected):
    reason = "ImageChangeNotAllowed"


class BadRequest(Permanent):
    reason = "AzureRejected"


def _retry_after(error: HttpResponseError) -> float | None:
    response = error.response
    if response is None:
        return None
    raw = getattr(response, "headers", {}).get("Retry-After")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def classify(error: Exception, *, what: str, image_write: bool = False) -> AzureProblem:
    """The problem an SDK exception means, for the call described by ``what``."""
    if isinstance(error, AzureProblem):
        return error
    if isinstance(error, ClientAuthenticationError):
        return AuthFailed(f"{what}: Azure refused the credentials: {_auth_summary(error)}", status=error.status_code)
    if isinstance(error, ServiceRequestError | ServiceResponseError | TimeoutError | ConnectionError):
        return Unavailable(f"{what}: could not reach Azure: {error}", retry_after=None)
    if isinstance(error, ResourceModifiedError):
        return PreconditionFailed(f"{what}: the scale set's model changed since it was read", status=412)
    if isinstance(error, ResourceNotFoundError) and not image_write:
        return NotFound(f"{what}: not found: {_summary(error)}", code=_code(error), status=404)
    if isinstance(error, HttpResponseError):
        status, code = error.status_code or 0, _code(error)
        retry = _retry_after(error)
        message = f"{what}: {status} {code}: {_summary(error)}"
        if status == 429:
            return Throttled(message, code=code, status=status, retry_after=retry)
        if status in (401, 403):
            return AuthFailed(message, code=code, status=status)
        if status == 412:
            return PreconditionFailed(message, code=code, status=status)
        if status == 409 and code == "PropertyChangeNotAllowed":
            return ImageChangeRejected(message, code=code, status=status)
        if status == 409:
            return Conflict(message, code=code, status=status, retry_after=retry)
        if image_write and (code in IMAGE_CODES or status == 404):
            return ImageRejected(message, code=code, status=status)
        if status == 404:
            return NotFound(message, code=code, status=status)
        if status >= 500 or status in (408, 0):
            return Unavailable(message, code=code, status=status, retry_after=retry)
        return BadRequest(message, code=code, status=status)
    return Unavailable(f"{what}: {type(error).__name__}: {error}")


def _code(error: HttpResponseError) -> str:
    return str(getattr(error.error, "code", "") or "") if error.error is not None else ""


def _auth_summary(error: ClientAuthenticationError) -> str:
    """The first line and the causes: DefaultAzureCredential puts the real reason (an untrusted certificate, an
    unknown client) on the lines after "failed to retrieve a token", which ``_summary`` would drop."""
    if error.response is not None:
        return _summary(error)
    lines = [line.strip() for line in str(error.message or error).splitlines() if line.strip()]
    causes = [line for line in lines[1:] if not line.startswith(("Attempted credentials", "To mitigate"))]
    return "; ".join(lines[:1] + causes) or type(error).__name__


def _summary(error: Exception) -> str:
    if isinstance(error, HttpResponseError) and error.error is not None and error.error.message:
        return str(error.error.message)
    first = str(error).strip().splitlines()
    return first[0] if first else type(error).__name__
