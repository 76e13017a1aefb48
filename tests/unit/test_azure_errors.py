"""Classifying the Azure SDK's exceptions: real ``azure.core.exceptions`` objects, built from a response shaped
like azure-core's (status, reason, case-insensitive headers, a CloudError body) as the generated clients raise
them, mapped to the operator's transient and permanent problems."""

from __future__ import annotations

import json
import ssl
from typing import Any

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.utils import CaseInsensitiveDict
from azure.identity import CredentialUnavailableError

from scaleset_image_operator.azure.errors import (
    AuthFailed,
    AzureProblem,
    BadRequest,
    Conflict,
    ImageChangeRejected,
    ImageRejected,
    NoCredentials,
    NotFound,
    Permanent,
    PreconditionFailed,
    Throttled,
    TokenNotIssued,
    Transient,
    Unavailable,
    UntrustedCertificate,
    classify,
)

REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    412: "Precondition Failed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ArmResponse:
    """The part of azure-core's ``HttpResponse`` that ``HttpResponseError`` and ``classify`` read."""

    def __init__(self, status: int, body: str, headers: dict[str, str]) -> None:
        self.status_code = status
        self.reason = REASONS.get(status, "Unknown")
        self.headers = CaseInsensitiveDict({"content-type": "application/json; charset=utf-8", **headers})
        self._body = body

    def text(self, encoding: str | None = None) -> str:
        return self._body


def an_http_error(
    status: int,
    code: str = "",
    message: str = "Azure says no.",
    *,
    kind: type[HttpResponseError] = HttpResponseError,
    retry_after: str | None = None,
    body: str | None = None,
) -> HttpResponseError:
    """An SDK exception for an ARM CloudError response (section 2.7 of the ARM reference)."""
    if body is None:
        body = json.dumps({"error": {"code": code, "message": message, "details": []}}) if code else ""
    headers = {"x-ms-request-id": "0f3c", "x-ms-correlation-request-id": "8a1d"}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    return kind(response=ArmResponse(status, body, headers))


CLASSIFICATIONS = [
    pytest.param(an_http_error(429, "TooManyRequests", retry_after="17"), False, Throttled, 17.0, id="429"),
    pytest.param(
        an_http_error(429, "OperationNotAllowed", retry_after="120"), False, Throttled, 120.0, id="429-compute-rp"
    ),
    pytest.param(an_http_error(429, "TooManyRequests"), False, Throttled, None, id="429-no-retry-after"),
    pytest.param(
        an_http_error(429, "TooManyRequests", retry_after="Wed, 21 Oct 2015 07:28:00 GMT"),
        False,
        Throttled,
        None,
        id="429-http-date",
    ),
    pytest.param(
        an_http_error(409, "PropertyChangeNotAllowed", kind=ResourceExistsError),
        True,
        ImageChangeRejected,
        None,
        id="409-property-change",
    ),
    pytest.param(
        an_http_error(409, "PropertyChangeNotAllowed", kind=ResourceExistsError),
        False,
        BadRequest,
        None,
        id="409-property-change-of-no-image",
    ),
    pytest.param(
        an_http_error(
            409,
            "OperationNotAllowed",
            "The Image type for a Virtual Machine Scale Set may not be changed.",
            kind=ResourceExistsError,
        ),
        True,
        ImageChangeRejected,
        None,
        id="409-image-type-change",
    ),
    pytest.param(
        an_http_error(409, "OperationNotAllowed", kind=ResourceExistsError, retry_after="10"),
        False,
        Conflict,
        10.0,
        id="409-operation-running",
    ),
    pytest.param(an_http_error(409, "Conflict", kind=ResourceExistsError), True, Conflict, None, id="409-on-write"),
    pytest.param(
        an_http_error(404, "ResourceNotFound", kind=ResourceNotFoundError), False, NotFound, None, id="404-read"
    ),
    pytest.param(
        an_http_error(404, "ParentResourceNotFound", kind=ResourceNotFoundError), False, NotFound, None, id="404-rg"
    ),
    pytest.param(an_http_error(404, "ResourceNotFound"), False, NotFound, None, id="404-plain-http-error"),
    pytest.param(
        an_http_error(404, "GalleryImageNotFound", kind=ResourceNotFoundError),
        True,
        ImageRejected,
        None,
        id="404-on-image-write",
    ),
    pytest.param(an_http_error(404, "NotFound"), True, ImageRejected, None, id="404-plain-on-image-write"),
    pytest.param(an_http_error(400, "InvalidParameter"), True, ImageRejected, None, id="400-invalid-image"),
    pytest.param(an_http_error(400, "PlatformImageNotFound"), True, ImageRejected, None, id="400-platform-image"),
    pytest.param(an_http_error(400, "VhdNotFound"), True, ImageRejected, None, id="400-vhd"),
    pytest.param(an_http_error(400, "InvalidParameter"), False, BadRequest, None, id="400-not-an-image-write"),
    pytest.param(an_http_error(400, "OperationNotAllowed"), True, BadRequest, None, id="400-other-on-image-write"),
    pytest.param(an_http_error(412, "PreconditionFailed"), False, PreconditionFailed, None, id="412"),
    pytest.param(
        an_http_error(412, "PreconditionFailed", kind=ResourceModifiedError),
        True,
        PreconditionFailed,
        None,
        id="412-resource-modified",
    ),
    pytest.param(
        an_http_error(401, "InvalidAuthenticationToken", kind=ClientAuthenticationError),
        False,
        AuthFailed,
        None,
        id="401",
    ),
    pytest.param(an_http_error(401, "ExpiredAuthenticationToken"), False, AuthFailed, None, id="401-plain"),
    pytest.param(an_http_error(403, "AuthorizationFailed"), True, AuthFailed, None, id="403"),
    pytest.param(an_http_error(500, "InternalServerError", retry_after="5"), False, Unavailable, 5.0, id="500"),
    pytest.param(an_http_error(502, body="<html>Bad Gateway</html>"), False, Unavailable, None, id="502-html"),
    pytest.param(an_http_error(503, "ServiceUnavailable", retry_after="30"), True, Unavailable, 30.0, id="503"),
    pytest.param(an_http_error(504, "GatewayTimeout"), False, Unavailable, None, id="504"),
    pytest.param(an_http_error(408, "RequestTimeout"), False, Unavailable, None, id="408"),
    pytest.param(HttpResponseError("no response at all"), False, Unavailable, None, id="no-response"),
    pytest.param(ServiceRequestError("Cannot connect to host"), False, Unavailable, None, id="service-request"),
    pytest.param(ServiceResponseError("Connection reset by peer"), True, Unavailable, None, id="service-response"),
    pytest.param(TimeoutError("timed out"), False, Unavailable, None, id="timeout"),
    pytest.param(ConnectionResetError("reset"), False, Unavailable, None, id="connection-reset"),
    pytest.param(
        ClientAuthenticationError("ClientSecretCredential: AADSTS7000215 invalid client secret"),
        False,
        TokenNotIssued,
        None,
        id="no-token",
    ),
]


@pytest.mark.parametrize(("error", "image_write", "expected", "retry_after"), CLASSIFICATIONS)
def test_each_azure_failure_is_classified_where_it_is_raised(
    error: Exception, image_write: bool, expected: type[AzureProblem], retry_after: float | None
) -> None:
    problem = classify(error, what="GET vmss-web", image_write=image_write)
    assert type(problem) is expected
    assert problem.retry_after == retry_after
    assert problem.message.startswith("GET vmss-web: ")


@pytest.mark.parametrize(
    ("problem", "family", "reason"),
    [
        (Throttled, Transient, "AzureThrottled"),
        (Unavailable, Transient, "AzureUnavailable"),
        (Conflict, Transient, "AzureConflict"),
        (PreconditionFailed, Transient, "ModelChanged"),
        (NotFound, Permanent, "ScaleSetNotFound"),
        (AuthFailed, Permanent, "AuthFailed"),
        (TokenNotIssued, AuthFailed, "AuthFailed"),
        (NoCredentials, AuthFailed, "AuthFailed"),
        (UntrustedCertificate, AuthFailed, "AuthFailed"),
        (ImageRejected, Permanent, "ImageNotFound"),
        (ImageChangeRejected, ImageRejected, "ImageChangeNotAllowed"),
        (BadRequest, Permanent, "AzureRejected"),
    ],
)
def test_each_problem_belongs_to_one_family_and_names_its_degraded_reason(
    problem: type[AzureProblem], family: type[AzureProblem], reason: str
) -> None:
    assert issubclass(problem, family)
    assert not issubclass(problem, Permanent if family is Transient else Transient)
    assert problem.reason == reason


def test_a_problem_keeps_azures_status_code_and_message() -> None:
    problem = classify(
        an_http_error(409, "PropertyChangeNotAllowed", "Changing property 'imageReference' is not allowed."),
        what="PATCH vmss-web",
        image_write=True,
    )
    assert (problem.status, problem.code) == (409, "PropertyChangeNotAllowed")
    assert problem.message == (
        "PATCH vmss-web: 409 PropertyChangeNotAllowed: Changing property 'imageReference' is not allowed."
    )


def test_a_not_found_scale_set_says_what_was_looked_for() -> None:
    problem = classify(
        an_http_error(
            404,
            "ResourceNotFound",
            "The Resource 'Microsoft.Compute/virtualMachineScaleSets/vmss-web' under resource group 'rg-web' "
            "was not found.",
            kind=ResourceNotFoundError,
        ),
        what="GET vmss-web",
    )
    assert (problem.status, problem.code) == (404, "ResourceNotFound")
    assert "'Microsoft.Compute/virtualMachineScaleSets/vmss-web'" in problem.message


def test_a_credential_failure_without_a_response_still_names_its_cause() -> None:
    problem = classify(
        ClientAuthenticationError("ClientSecretCredential.get_token failed: AADSTS7000215\nmore lines"),
        what="token",
    )
    assert problem.status is None
    assert (
        problem.message
        == "token: Azure refused the credentials: ClientSecretCredential.get_token failed: AADSTS7000215; more lines"
    )


def test_a_chained_credential_failure_names_its_cause_and_drops_the_boilerplate() -> None:
    """DefaultAzureCredential names the real cause (here an untrusted certificate) below its first line."""
    text = (
        "DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
        "Attempted credentials:\n"
        "\tEnvironmentCredential: Authentication failed: [SSL: CERTIFICATE_VERIFY_FAILED] self-signed certificate\n"
        "To mitigate this issue, please refer to the troubleshooting guidelines here at https://aka.ms/x."
    )
    problem = classify(ClientAuthenticationError(text), what="token")
    assert problem.message == (
        "token: TLS: the server's certificate is not trusted; set SCALESET_IMAGE_CA_BUNDLE "
        "(certificate verify failed: self-signed certificate)"
    )


def test_a_body_that_is_not_a_cloud_error_gives_an_empty_code() -> None:
    problem = classify(an_http_error(502, body="<html>Bad Gateway</html>"), what="GET vmss-web")
    assert (problem.status, problem.code) == (502, "")


def test_a_problem_already_classified_passes_through_unchanged() -> None:
    already = Throttled("GET vmss-web: 429", status=429, retry_after=3.0)
    assert classify(already, what="again") is already


def test_an_unexpected_exception_is_treated_as_passing_and_named() -> None:
    problem = classify(RuntimeError("Session is closed"), what="GET vmss-web")
    assert type(problem) is Unavailable
    assert problem.message == "GET vmss-web: RuntimeError: Session is closed"


def test_the_retry_after_header_is_read_whatever_its_case() -> None:
    error = an_http_error(429, "TooManyRequests")
    assert error.response is not None
    response: Any = error.response
    response.headers["RETRY-AFTER"] = "9"
    assert classify(error, what="GET").retry_after == 9.0


# -- credentials: none configured, an untrusted certificate, or a refusal --------------------------------------------
# DefaultAzureCredential's messages as azure-identity 1.27 (aio) words them, copied from real runs: with no
# configuration at all, against the simulator without its CA, with an empty federated token file (the simulator's
# token endpoint answers 401 invalid_client), and with the token endpoint on a closed port.

ATTEMPTED = "DefaultAzureCredential failed to retrieve a token from the included credentials.\nAttempted credentials:\n"
MITIGATE = (
    "\nTo mitigate this issue, please refer to the troubleshooting guidelines here at "
    "https://aka.ms/azsdk/python/identity/defaultazurecredential/troubleshoot."
)
ENVIRONMENT_UNAVAILABLE = (
    "\tEnvironmentCredential: EnvironmentCredential authentication unavailable. Environment variables are not fully "
    "configured.\nVisit https://aka.ms/azsdk/python/identity/environmentcredential/troubleshoot to troubleshoot this "
    "issue.\n"
)
NOTHING_CONFIGURED = (
    ATTEMPTED
    + ENVIRONMENT_UNAVAILABLE
    + "\tWorkloadIdentityCredential: WorkloadIdentityCredential authentication unavailable. The workload options are "
    "not fully configured. See the troubleshooting guide for more information: "
    "https://aka.ms/azsdk/python/identity/workloadidentitycredential/troubleshoot. Missing required arguments: "
    "'tenant_id', 'client_id', 'token_file_path'.\n"
    '\tManagedIdentityCredential: Unexpected content type "text/plain"\n'
    "\tSharedTokenCacheCredential: SharedTokenCacheCredential authentication unavailable. No accounts were found in "
    "the cache.\n"
    "\tVisualStudioCodeCredential: VisualStudioCodeCredential requires the 'azure-identity-broker' package to be "
    "installed. You must also ensure you have the Azure Resources extension installed and have signed in to Azure "
    "via Visual Studio Code.\n"
    "\tAzureCliCredential: Azure CLI not found on path\n"
    "\tAzurePowerShellCredential: PowerShell is not installed\n"
    "\tAzureDeveloperCliCredential: Azure Developer CLI could not be found. Please visit https://aka.ms/azure-dev for "
    "installation instructions and then,once installed, authenticate to your Azure account using 'azd auth login'."
    + MITIGATE
)
UNTRUSTED_TOKEN_ENDPOINT = (
    ATTEMPTED
    + "\tEnvironmentCredential: Cannot connect to host 127.0.0.1:41217 ssl:True [SSLCertVerificationError: (1, '[SSL: "
    "CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate (_ssl.c:1006)')]"
    + MITIGATE
)
REFUSED_BY_THE_TOKEN_ENDPOINT = (
    ATTEMPTED
    + ENVIRONMENT_UNAVAILABLE
    + "\tWorkloadIdentityCredential: Microsoft Entra ID error '(invalid_client) AADSTS7000216: 'client_assertion', "
    "'client_secret' or 'request' is required for the 'client_credentials' grant type.'\n"
    'Content: {"error": "invalid_client", "error_description": "AADSTS7000216: \'client_assertion\', '
    "'client_secret' or 'request' is required for the 'client_credentials' grant type.\"}" + MITIGATE
)
TOKEN_ENDPOINT_CLOSED = (
    ATTEMPTED + "\tEnvironmentCredential: Cannot connect to host 127.0.0.1:56785 ssl:default [Connect call failed "
    "('127.0.0.1', 56785)]" + MITIGATE
)


def test_no_configured_credential_is_reported_as_none_found_naming_those_tried() -> None:
    problem = classify(ClientAuthenticationError(message=NOTHING_CONFIGURED), what="reading vmss-web")

    assert type(problem) is NoCredentials and problem.reason == "AuthFailed"
    assert problem.message.startswith(
        "reading vmss-web: no credentials were found (tried: environment, workload identity, managed identity, "
        "shared token cache, Visual Studio Code, Azure CLI, Azure PowerShell, Azure Developer CLI); "
    )
    assert "AZURE_CLIENT_ID" in problem.message and "refused" not in problem.message


def test_a_lone_unavailable_credential_is_reported_as_none_found() -> None:
    unavailable = CredentialUnavailableError("EnvironmentCredential authentication unavailable. Not configured.")
    problem = classify(unavailable, what="token")

    assert type(problem) is NoCredentials
    assert problem.message.startswith("token: no credentials were found: EnvironmentCredential authentication")


def test_an_untrusted_certificate_of_the_token_endpoint_says_to_set_the_ca_bundle() -> None:
    problem = classify(ClientAuthenticationError(message=UNTRUSTED_TOKEN_ENDPOINT), what="reading vmss-web")

    assert type(problem) is UntrustedCertificate and problem.reason == "AuthFailed"
    assert problem.message == (
        "reading vmss-web: TLS: the server's certificate is not trusted; set SCALESET_IMAGE_CA_BUNDLE "
        "(127.0.0.1:41217: certificate verify failed: unable to get local issuer certificate)"
    )


def test_an_untrusted_certificate_of_arm_says_to_set_the_ca_bundle_instead_of_retrying() -> None:
    """azure-core wraps aiohttp's certificate error, which wraps ssl's, in a ServiceRequestError."""
    reason = "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate (_ssl.c:1006)"
    error = ServiceRequestError(f"Cannot connect to host arm.example:443 ssl:True [SSLCertVerificationError: {reason}]")
    error.__cause__ = ssl.SSLCertVerificationError(1, reason)

    problem = classify(error, what="reading vmss-web")

    assert type(problem) is UntrustedCertificate and isinstance(problem, Permanent)
    assert problem.message == (
        "reading vmss-web: TLS: the server's certificate is not trusted; set SCALESET_IMAGE_CA_BUNDLE "
        "(arm.example:443: certificate verify failed: self-signed certificate)"
    )


def test_a_refusal_by_the_token_endpoint_says_azure_refused_the_credentials_with_its_code() -> None:
    problem = classify(ClientAuthenticationError(message=REFUSED_BY_THE_TOKEN_ENDPOINT), what="reading vmss-web")

    assert type(problem) is TokenNotIssued and problem.reason == "AuthFailed"
    assert problem.message == (
        "reading vmss-web: Azure refused the credentials: WorkloadIdentityCredential: Microsoft Entra ID error "
        "'(invalid_client) AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required for the "
        "'client_credentials' grant type.'"
    )


def test_a_token_endpoint_that_cannot_be_reached_is_passing_trouble_not_a_refusal() -> None:
    problem = classify(ClientAuthenticationError(message=TOKEN_ENDPOINT_CLOSED), what="reading vmss-web")

    assert type(problem) is Unavailable
    assert problem.message == (
        "reading vmss-web: could not reach the token endpoint: EnvironmentCredential: Cannot connect to host "
        "127.0.0.1:56785 ssl:default [Connect call failed ('127.0.0.1', 56785)]"
    )


def test_an_arm_refusal_names_status_and_code_and_only_it_is_worth_a_new_credential() -> None:
    """A new credential (an empty token cache) helps when ARM refused a token it had accepted before (revoked);
    it cannot help when no credential is configured, a certificate is not trusted or the token endpoint refuses."""
    invalid = an_http_error(
        401, "InvalidAuthenticationToken", "The access token is invalid.", kind=ClientAuthenticationError
    )
    arm = classify(invalid, what="reading vmss-web")
    others = [
        classify(ClientAuthenticationError(message=text), what="token")
        for text in (NOTHING_CONFIGURED, UNTRUSTED_TOKEN_ENDPOINT, REFUSED_BY_THE_TOKEN_ENDPOINT)
    ]

    assert type(arm) is AuthFailed and arm.renewable
    assert arm.message == (
        "reading vmss-web: Azure refused the credentials: 401 InvalidAuthenticationToken: The access token is invalid."
    )
    assert [(problem.reason, problem.renewable) for problem in others if isinstance(problem, AuthFailed)] == [
        ("AuthFailed", False)
    ] * 3
