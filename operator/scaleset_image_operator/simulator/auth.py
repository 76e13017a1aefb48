"""The simulator's identity provider and ARM's bearer-token check.

Issues signed JWTs from an Entra-style token endpoint (client credentials with a secret or a federated
assertion, and the managed-identity endpoint), and validates them on every ARM request with the error
codes ARM uses. Revoking rotates the signing key, so every token issued before stops working.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jwt

from .errors import ArmError

ARM_AUDIENCES = (
    "https://management.azure.com/",
    "https://management.azure.com",
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
)


def audience_of_scope(scope: str) -> str:
    """The resource a client-credentials scope names, with one trailing slash: ``https://management.azure.com/.default``
    and the Azure CLI's ``https://management.core.windows.net//.default`` (a scope is the resource URI plus
    ``/.default``, so a resource URI ending in a slash gives two) -> ``https://management.azure.com/``,
    ``https://management.core.windows.net/``."""
    first = scope.split()[0] if scope.strip() else "https://management.azure.com/.default"
    return first.removesuffix(".default").rstrip("/") + "/"


class TokenAuthority:
    def __init__(self, lifetime_seconds: float = 3599, wall: Callable[[], float] = time.time) -> None:
        self.lifetime_seconds = lifetime_seconds
        self._wall = wall
        self._key = secrets.token_bytes(32)
        self.issued = 0

    def revoke_all(self) -> None:
        self._key = secrets.token_bytes(32)

    def issue(self, tenant: str, client_id: str, audience: str) -> dict[str, Any]:
        now = int(self._wall())
        lifetime = int(self.lifetime_seconds)
        claims = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{tenant}/",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "appid": client_id,
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, client_id)),
            "tid": tenant,
            "sub": client_id,
            "ver": "1.0",
            "uti": uuid.uuid4().hex,
        }
        self.issued += 1
        token = jwt.encode(claims, self._key, algorithm="HS256", headers={"kid": "sim"})
        return {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "expires_on": now + lifetime,
            "not_before": now,
            "resource": audience,
            "access_token": token,
        }

    def check(self, authorization: str | None) -> dict[str, Any]:
        """The claims of a valid ARM bearer token, or the 401 ARM answers."""
        if not authorization:
            raise self._unauthorized(
                "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise self._unauthorized(
                "AuthenticationFailedInvalidHeader",
                "Authentication failed. The 'Authorization' header is provided in an invalid format.",
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                token.strip(),
                self._key,
                algorithms=["HS256"],
                options={"verify_exp": False, "verify_aud": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise self._unauthorized("InvalidAuthenticationToken", "The access token is invalid.") from None
        if claims.get("aud") not in ARM_AUDIENCES:
            raise self._unauthorized(
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource "
                f"'{claims.get('aud')}'. It should exactly match with one of the allowed "
                f"audiences '{ARM_AUDIENCES[0]}','{ARM_AUDIENCES[2]}'.",
            )
        now = self._wall()
        if float(claims.get("exp", 0)) <= now:
            expired = datetime.fromtimestamp(float(claims["exp"]), UTC).strftime("%m/%d/%Y %H:%M:%S")
            current = datetime.fromtimestamp(now, UTC).strftime("%m/%d/%Y %H:%M:%S")
            raise self._unauthorized(
                "ExpiredAuthenticationToken",
                f"The access token expiry UTC time '{expired}' is earlier than current UTC time '{current}'.",
            )
        return claims

    @staticmethod
    def _unauthorized(code: str, message: str) -> ArmError:
        challenge = (
            'Bearer authorization_uri="https://login.windows.net/", error="invalid_token", '
            f'error_description="{message}"'
        )
        return ArmError(401, code, message, headers={"WWW-Authenticate": challenge})
