"""A credential that can start afresh when Azure refuses one of its tokens.

azure-identity's credentials cache their access tokens until shortly before they expire, and azure-core's bearer
policy only drops its own copy on a 401: a token Azure stopped accepting early (revoked, signing key rolled,
session ended) would be handed out again and again until it expires, up to an hour later. ``RenewableCredential``
wraps a factory of credentials; ``renew()`` swaps the one in use for a new one (with an empty cache), so the next
request gets a token issued now. Renewals are rate-limited, so credentials that are simply wrong are reported
(``AuthFailed``) instead of being renewed in a loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential

RENEW_INTERVAL_SECONDS = 60.0
"""At most one renewal per this many seconds."""


class RenewableCredential(AsyncTokenCredential):
    def __init__(self, factory: Callable[[], AsyncTokenCredential], clock: Callable[[], float]) -> None:
        self._factory = factory
        self._clock = clock
        self._inner = factory()
        self._retired: list[AsyncTokenCredential] = []
        self._renewed_at: float | None = None
        self.renewals = 0

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        return await self._inner.get_token(*scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs)

    def renew(self) -> bool:
        """Use a new credential from now on; False (and nothing changes) if one was made less than a minute ago."""
        now = self._clock()
        if self._renewed_at is not None and now - self._renewed_at < RENEW_INTERVAL_SECONDS:
            return False
        self._retired.append(self._inner)
        self._inner = self._factory()
        self._renewed_at = now
        self.renewals += 1
        return True

    async def close(self) -> None:
        for credential in (*self._retired, self._inner):
            await credential.close()
        self._retired.clear()

    async def __aenter__(self) -> RenewableCredential:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
