"""The scale-set gateway on ``azure.mgmt.compute.aio`` and ``azure.identity.aio`` (docs/architecture.md).

What it promises the reconciler:
- one observation = one scale-set GET + one VM list with ``$expand=instanceView`` (pages followed by the SDK),
  plus one GET of the in-flight operation's status URL when there is one; never a call per instance; while a
  batch runs, ``operation_status`` reads only the operation;
- a model write is a PATCH holding only the image fields, guarded by ``If-Match`` with the etag read;
- an image that follows a source (a platform image's ``latest``, a gallery image definition) costs one list of its
  versions per ``image_cache_seconds`` (a gallery's sent to, and counted against, the gallery's subscription);
  ``check_image`` is one read of the image;
- ``manualUpgrade`` is started without waiting (``polling=False``) and its ``Azure-AsyncOperation`` URL returned,
  so the operation can be awaited across operator restarts instead of being repeated;
- ``Retry-After`` is honoured inside a call only up to ``retry_after_cap``; a longer one ends the call as
  ``Throttled`` and blocks the subscription until then (``budget``); every request first takes its tokens from
  the operator's own budget for its Compute policy;
- one TLS context per gateway: with a CA bundle, azure-core would build a new one per request (``connection_verify``
  as a path), so no connection would be reused; the clients share one aiohttp connector built with it instead;
- every answer's status code and ``x-ms-ratelimit-remaining-*`` headers go to ``AzureStats``;
- every SDK call ends within ``timeout_seconds``, its retries, ``Retry-After`` waits and token request included
  (``CallDeadline``), and every socket read and connect within the same: azure-core's own limits are 300 s per
  read, retried, so a connection Azure stopped answering on would hold the pass for many minutes. A call that
  outlives it is the transient ``Unavailable``, saying what timed out.

Every endpoint, CA bundle and authority comes from ``Settings``; that is how the simulator is used.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from azure.core import MatchConditions
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import HttpResponseError, ServiceRequestTimeoutError, ServiceResponseTimeoutError
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy, AsyncRetryPolicy
from azure.core.pipeline.transport import AioHttpTransport
from azure.core.rest import HttpRequest
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.compute.models import VirtualMachineScaleSetUpdate, VirtualMachineScaleSetVMInstanceRequiredIDs

from ..core.images import Image, ImageKind
from ..core.observation import OperationView
from ..core.spec import ScaleSetRef
from ..ports import Observation
from .budget import IMAGE_LIST, MODEL_WRITE, OPERATION_GET, SCALE_SET_GET, UPGRADE, VM_LIST, RequestBudget
from .convert import operation_from_arm, scale_set_from_arm
from .credentials import RenewableCredential
from .errors import AuthFailed, AzureProblem, Conflict, ImageRejected, Throttled, TokenRefused, Unavailable, classify
from .operations import operation_name

_RATE_LIMIT = re.compile(r"(?:Microsoft\.Compute/)?(?P<policy>[A-Za-z0-9]+);(?P<remaining>\d+)")


@dataclass
class AzureStats:
    """What the gateway saw on the wire, for metrics: requests by (operation, status code), throttles, and the
    last remaining-budget figure Azure reported per rate-limit policy."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    throttled: int = 0
    remaining: dict[str, float] = field(default_factory=dict)

    def record(self, method: str, url: str, status: int, headers: Any) -> None:
        self.requests[(operation_name(method, url), str(status))] += 1
        if status == 429:
            self.throttled += 1
        for match in _RATE_LIMIT.finditer(headers.get("x-ms-ratelimit-remaining-resource") or ""):
            self.remaining[match.group("policy")] = float(match.group("remaining"))
        for name in ("x-ms-ratelimit-remaining-subscription-reads", "x-ms-ratelimit-remaining-subscription-writes"):
            value = headers.get(name)
            if value and value.isdigit():
                self.remaining[name.removeprefix("x-ms-ratelimit-remaining-")] = float(value)


class _PageCounter:
    """A ``raw_response_hook`` for a paged list: every page's answer goes to the stats hook, and is counted (each
    page beyond the first costs another token of the list's budget policy)."""

    def __init__(self, hook: Callable[[PipelineResponse[Any, Any]], None]) -> None:
        self._hook = hook
        self.count = 0

    def __call__(self, response: PipelineResponse[Any, Any]) -> None:
        self._hook(response)
        self.count += 1


class CappedRetryPolicy(AsyncRetryPolicy[Any, Any]):
    """azure-core's retry policy, but a ``Retry-After`` longer than the cap is not slept inside the call (the
    reconciler requeues instead), and a POST/PATCH that failed with 5xx is not blindly resent: Azure may have
    acted on it, and the next observation will say so."""

    def __init__(self, cap_seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cap_seconds = cap_seconds

    def is_retry(self, settings: dict[str, Any], response: PipelineResponse[Any, Any]) -> bool:
        if not super().is_retry(settings, response):
            return False
        retry_after = self.get_retry_after(response)
        if retry_after is not None and retry_after > self.cap_seconds:
            return False
        method = response.http_request.method.upper()
        has_retry_after = bool(response.http_response.headers.get("Retry-After"))
        return not (method in ("POST", "PATCH") and response.http_response.status_code >= 500 and not has_retry_after)


class CallTimedOut(TimeoutError):
    """An SDK call that outlived ``GatewayOptions.timeout_seconds``; the message names the request."""


class CallDeadline(AsyncHTTPPolicy[Any, Any]):
    """Ends one SDK call after ``seconds``, whatever it is waiting for. A per-call policy: it runs outside the
    retry policy and the bearer-token policy, so retries, ``Retry-After`` waits and the token request all count."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    async def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        deadline = asyncio.timeout(self.seconds)
        try:
            async with deadline:
                return await self.next.send(request)
        except TimeoutError:
            if not deadline.expired():
                raise
            http = request.http_request
            path = urlsplit(http.url).path
            raise CallTimedOut(f"no answer from Azure to {http.method} {path} within {self.seconds:g} s") from None


@dataclass(frozen=True)
class GatewayOptions:
    arm_endpoint: str
    arm_scope: str
    connection_verify: str | bool
    retry_after_cap: float = 30.0
    budget_share: float = 0.5
    image_cache_seconds: float = 300.0
    retry_total: int = 4
    timeout_seconds: float = 60.0
    """Longest time one SDK call may take (``Settings.azure_timeout_seconds``), and every socket connect or read."""


class AzureGateway:
    """``ports.ScaleSetGateway`` on the Azure SDK. One client per subscription, shared by every ScaleSetImage."""

    def __init__(
        self,
        credential: AsyncTokenCredential,
        options: GatewayOptions,
        *,
        clock: Callable[[], float],
        stats: AzureStats | None = None,
        budget: RequestBudget | None = None,
    ) -> None:
        self._credential = credential
        self._options = options
        self._clock = clock
        self.stats = stats or AzureStats()
        self.budget = budget or RequestBudget(options.budget_share, clock=clock)
        self._clients: dict[str, ComputeManagementClient] = {}
        verify = options.connection_verify
        self._ssl = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else None
        self._image_cache: dict[tuple[str, ...], tuple[float, str]] = {}

    def _hook(self, response: PipelineResponse[Any, Any]) -> None:
        self.stats.record(
            response.http_request.method,
            response.http_request.url,
            response.http_response.status_code,
            response.http_response.headers,
        )

    def _client(self, subscription: str) -> ComputeManagementClient:
        client = self._clients.get(subscription.lower())
        if client is None:
            timeout = self._options.timeout_seconds
            sockets = {"connection_timeout": timeout, "read_timeout": timeout}
            transport: dict[str, Any] = dict(sockets)
            if self._ssl is not None:
                # Called from a coroutine: aiohttp wants its session made inside the running loop.
                session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(ssl=self._ssl),
                    trust_env=True,
                    cookie_jar=aiohttp.DummyCookieJar(),
                    auto_decompress=False,
                )
                transport = {"transport": AioHttpTransport(session=session, session_owner=True, **sockets)}
            client = ComputeManagementClient(
                self._credential,
                subscription,
                base_url=self._options.arm_endpoint,
                credential_scopes=[self._options.arm_scope],
                connection_verify=True if self._ssl is not None else self._options.connection_verify,
                retry_policy=CappedRetryPolicy(
                    self._options.retry_after_cap,
                    retry_total=self._options.retry_total,
                    retry_backoff_factor=0.5,
                    retry_backoff_max=10,
                ),
                raw_response_hook=self._hook,
                per_call_policies=[CallDeadline(timeout)],
                polling_interval=1.0,
                **transport,
            )
            self._clients[subscription.lower()] = client
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    async def _spend(self, ref: ScaleSetRef, *policies: str) -> None:
        await self.budget.spend(ref.subscription_id, *((policy, 1.0) for policy in policies))

    def _problem(self, ref: ScaleSetRef, error: Exception, what: str, *, image_write: bool = False) -> AzureProblem:
        if isinstance(error, CallTimedOut | ServiceRequestTimeoutError | ServiceResponseTimeoutError):
            # Nothing is known to be wrong but the wait: try again on the next pass. A write may have been acted
            # on; the next observation says so.
            detail = error if isinstance(error, CallTimedOut) else f"{type(error).__name__}: {error}"
            return Unavailable(f"{what}: timed out: {detail}")
        problem = classify(error, what=what, image_write=image_write)
        credential = self._credential
        renewable = isinstance(problem, AuthFailed) and problem.renewable  # a new credential finds no CA, no identity
        if renewable and isinstance(credential, RenewableCredential) and credential.renew():
            return TokenRefused(f"{problem.message}; requesting a new token", status=problem.status, retry_after=1.0)
        if isinstance(problem, Throttled) and problem.retry_after:
            self.budget.block(ref.subscription_id, problem.retry_after)
        return problem

    # -------------------------------------------------------------------------------- reads

    async def observe(self, ref: ScaleSetRef, operation_url: str | None) -> Observation:
        client = self._client(ref.subscription_id)
        what = f"reading {ref.name}"
        pages = _PageCounter(self._hook)

        try:
            # Every token the observation needs is taken before its first request: a pass never spends a GET
            # and then finds the budget empty for the list.
            await self._spend(ref, SCALE_SET_GET, VM_LIST, *((OPERATION_GET,) if operation_url else ()))
            vmss = await client.virtual_machine_scale_sets.get(ref.resource_group, ref.name)
            orchestration = str((vmss.get("properties") or {}).get("orchestrationMode") or "Uniform")
            vms: list[Any] = []
            if orchestration.lower() != "flexible":
                pager = client.virtual_machine_scale_set_vms.list(
                    ref.resource_group, ref.name, expand="instanceView", raw_response_hook=pages
                )
                vms = [vm async for vm in pager]
            if pages.count > 1:
                self.budget.debit(ref.subscription_id, VM_LIST, pages.count - 1)
            operation = await self._operation(client, operation_url) if operation_url else None
        except Exception as error:
            raise self._problem(ref, error, what) from error
        return Observation(scale_set_from_arm(vmss, vms), operation)

    async def model_etag(self, ref: ScaleSetRef) -> str:
        client = self._client(ref.subscription_id)
        try:
            await self._spend(ref, SCALE_SET_GET)
            vmss = await client.virtual_machine_scale_sets.get(ref.resource_group, ref.name)
        except Exception as error:
            raise self._problem(ref, error, f"reading {ref.name}") from error
        return str(vmss.get("etag") or "")

    async def operation_status(self, ref: ScaleSetRef, operation_url: str) -> OperationView:
        client = self._client(ref.subscription_id)
        try:
            await self._spend(ref, OPERATION_GET)
            return await self._operation(client, operation_url)
        except Exception as error:
            raise self._problem(ref, error, f"reading the status of {ref.name}'s operation") from error

    async def _operation(self, client: ComputeManagementClient, url: str) -> OperationView:
        response = await client.send_request(HttpRequest("GET", url))
        if response.status_code >= 400:
            response.raise_for_status()
        return operation_from_arm(url, response.json())

    async def resolve_image(self, ref: ScaleSetRef, image: Image, location: str) -> Image:
        if image.is_gallery_definition:
            return await self._newest_gallery_version(ref, image, location)
        if not image.is_latest:
            return image
        key = (
            ref.subscription_id.lower(),
            location.lower(),
            image.publisher.lower(),
            image.offer.lower(),
            image.sku.lower(),
        )
        cached = self._image_cache.get(key)
        if cached is not None and self._clock() - cached[0] < self._options.image_cache_seconds:
            return image.with_version(cached[1])
        client = self._client(ref.subscription_id)
        what = f"listing versions of {image.key()}"
        try:
            await self._spend(ref, IMAGE_LIST)
            versions = await client.virtual_machine_images.list(location, image.publisher, image.offer, image.sku)
        except Exception as error:
            raise self._problem(ref, error, what, image_write=True) from error
        names = [str(v.name) for v in versions or [] if v.name]
        if not names:
            raise ImageRejected(
                f"{what}: no version of {image.publisher}:{image.offer}:{image.sku} is published in {location}",
                code="PlatformImageNotFound",
            )
        newest = max(names, key=_version_key)
        self._image_cache[key] = (self._clock(), newest)
        return image.with_version(newest)

    async def _newest_gallery_version(self, ref: ScaleSetRef, image: Image, location: str) -> Image:
        """A gallery image definition's version Azure would deploy in ``location`` (its "latest"): the highest
        version number (major, then minor, then patch) that is not excluded from latest, for the whole version
        or for that region, and is replicated to that region (docs/simulator.md, "Gallery image versions and
        definitions")."""
        source = image.source
        if source is None:  # is_gallery_definition says it parses; kept for the type checker
            return image
        key = ("gallery", source.subscription.lower(), _region(location), image.ref.rstrip("/").lower())
        cached = self._image_cache.get(key)
        if cached is not None and self._clock() - cached[0] < self._options.image_cache_seconds:
            return image.with_version(cached[1])
        at = _in_subscription(ref, source.subscription)
        client = self._client(at.subscription_id)
        what = f"listing versions of the gallery image {image.key()}"
        pages = _PageCounter(self._hook)

        try:
            await self._spend(at, IMAGE_LIST)
            pager = client.gallery_image_versions.list_by_gallery_image(
                source.group, source.gallery, source.image, raw_response_hook=pages
            )
            versions = [version async for version in pager]
            if pages.count > 1:
                self.budget.debit(at.subscription_id, IMAGE_LIST, pages.count - 1)
        except Exception as error:
            raise self._problem(at, error, what, image_write=True) from error
        names = [name for version in versions if (name := _deployable_in(version, location))]
        if not names:
            raise ImageRejected(
                f"{what}: no version of it is replicated to {location} and not excluded from latest "
                f"({len(versions)} version(s) in the definition; see publishingProfile.targetRegions and "
                "excludeFromLatest)",
                code="GalleryImageNotFound",
            )
        newest = max(names, key=_version_key)
        self._image_cache[key] = (self._clock(), newest)
        return image.with_version(newest)

    async def check_image(self, ref: ScaleSetRef, image: Image, location: str) -> None:
        """Whether the image exists for ``location``, by one read of it (nothing is written): ``ImageRejected``
        (ImageNotFound) when Azure does not know it. An image that follows a source is resolved as a rollout
        would resolve it. A legacy VHD is a storage blob, not an ARM resource, and a shared or community gallery id
        without a version names nothing to read: neither is checked here (nor an id of no shape Azure knows)."""
        if image.follows_source:
            await self.resolve_image(ref, image, location)
            return
        source = image.source
        if image.kind is ImageKind.URI or (source is None and image.kind is not ImageKind.PLATFORM):
            return
        if source is not None and source.form in ("shared", "community") and source.version.lower() in ("", "latest"):
            return  # names no version to read; Azure picks one at VM create
        at = _in_subscription(ref, source.subscription) if source is not None and source.subscription else ref
        client = self._client(at.subscription_id)
        what = f"checking that the image {image.key()} exists in {location}"
        try:
            await self._spend(at, IMAGE_LIST)
            if source is None:
                images = client.virtual_machine_images
                await images.get(location, image.publisher, image.offer, image.sku, image.version)
            elif source.form == "gallery":
                await client.gallery_image_versions.get(source.group, source.gallery, source.image, source.version)
            elif source.form == "managed":
                await client.images.get(source.group, source.image)
            elif source.form == "shared":
                await client.shared_gallery_image_versions.get(location, source.gallery, source.image, source.version)
            else:
                await client.community_gallery_image_versions.get(
                    location, source.gallery, source.image, source.version
                )
        except Exception as error:
            problem = self._problem(at, error, what, image_write=True)
            if isinstance(problem, ImageRejected):
                raise ImageRejected(
                    f"{what}: Azure does not know it: {problem.message.removeprefix(f'{what}: ')}",
                    code=problem.code,
                    status=problem.status,
                ) from error
            raise problem from error

    # ------------------------------------------------------------------------------- writes

    async def _patch(self, ref: ScaleSetRef, body: dict[str, Any], etag: str, what: str, *, image_write: bool) -> None:
        client = self._client(ref.subscription_id)
        try:
            await self._spend(ref, MODEL_WRITE)
            await client.virtual_machine_scale_sets.begin_update(
                ref.resource_group,
                ref.name,
                VirtualMachineScaleSetUpdate(body),
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
                polling=False,
            )
        except Exception as error:
            raise self._problem(ref, error, what, image_write=image_write) from error

    async def update_model_image(self, ref: ScaleSetRef, image: Image, etag: str) -> None:
        fragment = image.model_patch()
        if image.kind is ImageKind.URI:
            fragment = {"osDisk": fragment["osDisk"]}
        body = {"properties": {"virtualMachineProfile": {"storageProfile": fragment}}}
        await self._patch(ref, body, etag, f"changing the model image of {ref.name} to {image.key()}", image_write=True)

    async def set_manual_upgrade_mode(self, ref: ScaleSetRef, etag: str) -> None:
        await self._patch(
            ref,
            {"properties": {"upgradePolicy": {"mode": "Manual"}}},
            etag,
            f"setting the upgrade policy of {ref.name} to Manual",
            image_write=False,
        )

    async def upgrade_instances(self, ref: ScaleSetRef, instance_ids: tuple[str, ...]) -> str:
        client = self._client(ref.subscription_id)
        initial: list[PipelineResponse[Any, Any]] = []

        def capture(response: PipelineResponse[Any, Any]) -> None:
            self._hook(response)
            initial.append(response)

        what = f"manualUpgrade of {ref.name} instances {', '.join(instance_ids)}"
        try:
            await self._spend(ref, UPGRADE)
            await client.virtual_machine_scale_sets.begin_update_instances(
                ref.resource_group,
                ref.name,
                VirtualMachineScaleSetVMInstanceRequiredIDs(instance_ids=list(instance_ids)),
                polling=False,
                raw_response_hook=capture,
            )
        except HttpResponseError as error:
            code = str(getattr(error.error, "code", "") or "")
            if error.status_code == 400 and code == "InvalidParameter" and "instanceid" in str(error.message).lower():
                # Scaled in between our read and this call: not a rejection of the rollout. Read and plan again.
                raise Conflict(
                    f"{what}: {error.message} (the scale set changed since it was read; reading it again)",
                    code=code,
                    status=400,
                    retry_after=1.0,
                ) from error
            raise self._problem(ref, error, what) from error
        except Exception as error:
            raise self._problem(ref, error, what) from error
        headers = initial[-1].http_response.headers if initial else {}
        url = headers.get("Azure-AsyncOperation") or headers.get("Location") or ""
        return str(url)


def _version_key(version: str) -> tuple[tuple[int, str], ...]:
    return tuple((int(part), "") if part.isdigit() else (-1, part) for part in version.split("."))


def _region(name: str) -> str:
    """A region name as Azure compares it: "West Europe", "westeurope" and "WestEurope" are one region."""
    return name.replace(" ", "").lower()


def _in_subscription(ref: ScaleSetRef, subscription: str) -> ScaleSetRef:
    """``ref`` for the requests about an image in ``subscription``: they go to, and are counted against, the image's
    subscription, which need not be the scale set's."""
    return dataclasses.replace(ref, subscription_id=subscription)


def _deployable_in(version: Any, location: str) -> str:
    """A gallery image version's name if Azure would take it as the definition's latest in ``location``, else "".

    ``version`` is a ``GalleryImageVersion`` (a mapping of Azure's JSON). A version not yet (or no longer)
    ``Succeeded`` cannot be deployed, whatever its number."""
    properties = version.get("properties") or {}
    profile = properties.get("publishingProfile") or {}
    state = str(properties.get("provisioningState") or "Succeeded")
    if profile.get("excludeFromLatest") or state.lower() != "succeeded":
        return ""
    for region in profile.get("targetRegions") or []:
        if _region(str(region.get("name") or "")) == _region(location):
            return "" if region.get("excludeFromLatest") else str(version.get("name") or "")
    return ""
