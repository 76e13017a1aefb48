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
        ├── AuthFailed                ARM refused the token (401/403); a new credential may help (AuthFailed)
        │   ├── TokenNotIssued        the token endpoint refused the credentials (AuthFailed)
        │   ├── NoCredentials         no credential of DefaultAzureCredential's chain is configured (AuthFailed)
        │   └── UntrustedCertificate  the token endpoint or ARM presented a certificate not trusted (AuthFailed)
        ├── ImageRejected             Azure refused the image: unknown (ImageNotFound), not allowed in
        │                             place (ImageChangeNotAllowed), or one model too many for the
        │                             instances of a Uniform scale set (ModelLimitReached)
        └── BadRequest                any other 4xx (AzureRejected)

Handlers map ``Transient`` to a requeue after ``retry_after`` and ``Permanent`` to a Degraded condition.
"""

from __future__ import annotations

import re
import ssl

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import CredentialUnavailableError

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
    renewable = True
    """Whether a new credential (an empty token cache) might help: Azure refused a token, perhaps a revoked one."""


class TokenNotIssued(AuthFailed):
    """The token endpoint refused to issue a token (an unknown client, a wrong secret or federated token): a new
    credential would present the same."""

    renewable = False


class NoCredentials(AuthFailed):
    """No credential could even be configured: a new one would find none either."""

    renewable = False


class UntrustedCertificate(AuthFailed):
    """TLS verification failed: nothing reached Azure, so nothing about the credentials is known."""

    renewable = False


class ImageRejected(Permanent):
    reason = "ImageNotFound"


class ImageChangeRejected(ImageRejected):
    reason = "ImageChangeNotAllowed"


class ModelLimitReached(ImageRejected):
    """The instances of a Uniform scale set already reference as many distinct models as Azure keeps (10): Azure
    refuses every model change until they are upgraded. An ``ImageRejected``, so that the reconciler's refusal
    memory holds the change back instead of sending it again on every pass."""

    reason = "ModelLimitReached"


MODEL_LIMIT_ADVICE = (
    "finish upgrading the remaining instances to the current model, then the operator sends the image change again "
    "on its next steady check, or at once when the spec changes (the instances to upgrade are those whose "
    "latestModelApplied is false)"
)


def _is_model_limit(status: int, message: str) -> bool:
    # Azure's text, 400: "Virtual Machine Scale Set '<name>' has reached its limit of 10 models that may be referenced
    # by one or more VMs belonging to the Virtual Machine Scale Set. Upgrade the VMs to the latest model ...". Its
    # error code is not documented; the text is what identifies it (docs/simulator.md).
    lowered = message.lower()
    return 400 <= status < 500 and "reached its limit of" in lowered and "models that may be referenced" in lowered


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
        return _credential_problem(error, what)
    if isinstance(error, ServiceRequestError | ServiceResponseError | TimeoutError | ConnectionError):
        if _untrusted_certificate(error, str(error)):
            return UntrustedCertificate(f"{what}: {UNTRUSTED_CERTIFICATE} ({_tls_detail(str(error))})")
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
        if image_write and _is_model_limit(status, _summary(error)):
            return ModelLimitReached(f"{message}; {MODEL_LIMIT_ADVICE}", code=code, status=status)
        if status == 409 and image_write and code == "OperationNotAllowed" and "image type" in message.lower():
            # "The Image type for a Virtual Machine Scale Set may not be changed" (platform <-> custom image) shares
            # its code with "another operation is in progress": only the text tells a refusal from a wait.
            return ImageChangeRejected(message, code=code, status=status)
        if status == 409 and code == "PropertyChangeNotAllowed":
            refused = ImageChangeRejected if image_write else BadRequest
            return refused(message, code=code, status=status)
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


UNTRUSTED_CERTIFICATE = "TLS: the server's certificate is not trusted; set SCALESET_IMAGE_CA_BUNDLE"
"""How an untrusted certificate of the token endpoint or of ARM is reported: the CA bundle is what fixes it."""

NO_CREDENTIALS_HINT = (
    "set AZURE_TENANT_ID and AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE, "
    "or give the operator a managed identity"
)

_CREDENTIAL_NAMES = {
    "EnvironmentCredential": "environment",
    "WorkloadIdentityCredential": "workload identity",
    "ManagedIdentityCredential": "managed identity",
    "SharedTokenCacheCredential": "shared token cache",
    "VisualStudioCodeCredential": "Visual Studio Code",
    "AzureCliCredential": "Azure CLI",
    "AzurePowerShellCredential": "Azure PowerShell",
    "AzureDeveloperCliCredential": "Azure Developer CLI",
}
_ATTEMPT = re.compile(r"^\t(?P<name>\w+): ?(?P<message>.*)$")
_TLS = re.compile(r"CERTIFICATE_VERIFY_FAILED|certificate verify failed|SSLCertVerificationError", re.IGNORECASE)
_TLS_REASON = re.compile(r"certificate verify failed: (?P<reason>[^'\"()\[\]]+)", re.IGNORECASE)
_HOST = re.compile(r"Cannot connect to host (?P<host>[^\s,]+)")
_ANSWERED = re.compile(
    r"AADSTS\d+|Microsoft Entra ID|\b(?:invalid_client|unauthorized_client|invalid_grant|invalid_scope|"
    r"invalid_request|unsupported_grant_type)\b"
)
"""What only an answer of the token endpoint holds: an Entra error code (AADSTS...) or an OAuth error."""
_UNREACHABLE = re.compile(
    r"Cannot connect to host|Connect call failed|Connection refused|Connection reset|Name or service not known|"
    r"Temporary failure in name resolution|No address associated|timed out|Timeout",
    re.IGNORECASE,
)


def _credential_problem(error: ClientAuthenticationError, what: str) -> AzureProblem:
    """What a failure to get or to use a token means.

    With a response, ARM answered 401: it refused a token, perhaps one it revoked (the gateway renews the credential
    once). Without one it is azure-identity's account of its attempts, where the token endpoint's answers end up
    too: DefaultAzureCredential tries its credentials in order, goes on past each that is not configured
    (CredentialUnavailableError) and stops at the first that fails, listing every attempt as a tab-indented
    "Name: message" line. So the last attempt decides: an untrusted certificate, an answer of the token endpoint
    (an AADSTS code), a token endpoint that could not be reached, or else none of the credentials was configured.
    """
    if error.response is not None:
        code = _code(error)
        head = " ".join(str(part) for part in (error.status_code, code) if part)
        detail = f"{head}: {_summary(error)}" if head else _summary(error)
        return AuthFailed(f"{what}: Azure refused the credentials: {detail}", code=code, status=error.status_code)
    text = str(error.message or error)
    attempts = _attempts(text)
    deciding = attempts[-1][1] if attempts else text
    summary = f"{attempts[-1][0]}: {deciding}" if attempts else _lines_summary(text)
    if _untrusted_certificate(error, deciding):
        return UntrustedCertificate(f"{what}: {UNTRUSTED_CERTIFICATE} ({_tls_detail(deciding)})")
    if _ANSWERED.search(deciding):
        return TokenNotIssued(f"{what}: Azure refused the credentials: {summary}")
    if _UNREACHABLE.search(deciding) or isinstance(error.__cause__, ServiceRequestError | OSError):
        return Unavailable(f"{what}: could not reach the token endpoint: {summary}")
    if attempts:
        tried = ", ".join(_CREDENTIAL_NAMES.get(name, name) for name, _ in attempts)
        return NoCredentials(f"{what}: no credentials were found (tried: {tried}); {NO_CREDENTIALS_HINT}")
    if isinstance(error, CredentialUnavailableError):
        return NoCredentials(f"{what}: no credentials were found: {summary}; {NO_CREDENTIALS_HINT}")
    return TokenNotIssued(f"{what}: could not get a token: {summary}")


def _attempts(text: str) -> list[tuple[str, str]]:
    """The "Attempted credentials" of a DefaultAzureCredential (or chained) failure: (name, first line) each."""
    if "Attempted credentials:" not in text:
        return []
    listed = text.split("Attempted credentials:", 1)[1]
    return [
        (match["name"], match["message"].strip())
        for match in (_ATTEMPT.match(line) for line in listed.splitlines())
        if match is not None
    ]


def _untrusted_certificate(error: BaseException, text: str) -> bool:
    seen: BaseException | None = error
    for _ in range(10):  # the SDK chains a few exceptions; a cycle must not hang classification
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return bool(_TLS.search(text))


def _tls_detail(text: str) -> str:
    """``127.0.0.1:8443: certificate verify failed: self-signed certificate``, as far as the text says."""
    reason = _TLS_REASON.search(text)
    host = _HOST.search(text)
    if reason is None:
        after = re.search(r"CERTIFICATE_VERIFY_FAILED\]?\s*(?P<reason>[^'\"()\[\]]+)", text)
        detail = f"certificate verify failed: {after['reason'].strip()}" if after else "certificate verify failed"
    else:
        detail = f"certificate verify failed: {reason['reason'].strip()}"
    return f"{host['host']}: {detail}" if host else detail


def _lines_summary(text: str) -> str:
    """The first line and the lines that say why, without azure-identity's boilerplate."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    causes = [line for line in lines[1:] if not line.startswith(("Attempted credentials", "To mitigate"))]
    return "; ".join(lines[:1] + causes) or "no message"


def _summary(error: Exception) -> str:
    if isinstance(error, HttpResponseError) and error.error is not None and error.error.message:
        return str(error.error.message)
    first = str(error).strip().splitlines()
    return first[0] if first else type(error).__name__
