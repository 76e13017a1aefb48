"""The simulator's HTTPS front end: ARM routing, the token endpoints and the ``/_sim`` control API.

It does what ARM's front door does before the Compute resource provider sees a request (TLS, bearer
token, api-version, throttling, fault injection, request ids and rate-limit headers), then hands the
request to ``World`` and renders the answer. Long-running operations answer with absolute
``Azure-AsyncOperation``/``Location`` URLs built from the Host the client used.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import tempfile
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import trustme
from aiohttp import web

from . import directory, render
from .auth import TokenAuthority, audience_of_scope
from .clock import SimClock, iso
from .errors import ArmError, invalid_parameter
from .faults import FaultBook
from .images import GalleryVersion, ImageCatalog
from .model import Operation, ScaleSet
from .throttling import Throttler
from .world import World

MIN_API_VERSION = "2016-03-30"
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview|-beta|-alpha)?$", re.IGNORECASE)
LRO_RETRY_AFTER = 10.0
POLL_RETRY_AFTER = 30.0
CLAIMS = web.RequestKey("claims", dict)
"""The caller's token claims, kept on the request for the handlers that answer by tenant."""


@dataclass(frozen=True)
class SimulatorConfig:
    """How to run the simulator. Times are seconds; ``time_scale`` is simulated seconds per real second."""

    host: str = "127.0.0.1"
    port: int = 8443
    ca_file: Path = Path("sim-ca.pem")
    time_scale: float = 1.0
    page_size: int = 100
    token_lifetime: float = 3599.0
    throttling: bool = True
    seed: int = 0


@dataclass
class _Route:
    method: str
    pattern: tuple[str, ...]
    handler: Callable[[web.Request, dict[str, str]], Awaitable[web.StreamResponse]]
    operation: str
    policy: str | None


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(body), headers=headers, content_type="application/json", charset="utf-8"
    )


class Simulator:
    """The Azure Resource Manager simulator: ``await start()``, use ``url`` and ``ca_file``, ``await stop()``."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.clock = SimClock(config.time_scale)
        self.faults = FaultBook()
        self.world = World(self.clock, ImageCatalog.with_defaults(), self.faults, seed=config.seed)
        self.throttler = Throttler(enabled=config.throttling)
        self.tokens = TokenAuthority(config.token_lifetime)
        self.requests: Counter[str] = Counter()
        self.responses: dict[str, Counter[str]] = defaultdict(Counter)
        self.throttled = 0
        self.writes = 0
        self.url = ""
        self.ca_file = config.ca_file
        self._runner: web.AppRunner | None = None
        self._routes = self._arm_routes()

    # --------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Listen, then write the CA file (into a folder that must exist): a simulator that cannot listen leaves
        no CA behind for clients to trust, nor an old one overwritten. Raises ``OSError`` for either."""
        ca = trustme.CA()
        server_cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_cert.configure_cert(context)
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/_sim/{tail:.*}", self._control)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, ssl_context=context)
        try:
            await site.start()
            ca.cert_pem.write_to_path(str(self.ca_file))
        except BaseException:
            await self.stop()
            raise
        port = int(self._runner.addresses[0][1])  # the port picked when the configured one is 0
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        self.url = f"https://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---------------------------------------------------------------------------------- dispatch

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        lowered = [p.lower() for p in parts]
        if (len(parts) >= 3 and lowered[1:3] == ["oauth2", "v2.0"]) or lowered[1:3] == ["oauth2", "token"]:
            return await self._token(request, parts[0])
        if len(parts) >= 2 and lowered[-2:] == [".well-known", "openid-configuration"]:
            return self._openid(request, parts[0])
        if lowered[:4] == ["metadata", "identity", "oauth2", "token"]:
            return self._managed_identity(request)
        if lowered == ["metadata", "endpoints"]:
            return self._cloud_metadata(request)
        return await self._arm(request, parts, lowered)

    def _base(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    async def _arm(self, request: web.Request, parts: list[str], lowered: list[str]) -> web.StreamResponse:
        request_id = str(uuid.uuid4())
        headers = {
            "x-ms-request-id": request_id,
            "x-ms-correlation-request-id": request.headers.get("x-ms-correlation-request-id", request_id),
            "x-ms-routing-request-id": f"EASTUS:{datetime.now(UTC):%Y%m%dT%H%M%SZ}:{request_id}",
            "Cache-Control": "no-cache",
            "Pragma": "no-cache",
            "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
        }
        client_request_id = request.headers.get("x-ms-client-request-id")
        if client_request_id:
            headers["x-ms-client-request-id"] = client_request_id
        self.world.advance()
        route, captures, wrong_method = self._match(request.method, lowered, parts)
        operation_name = route.operation if route else f"Unknown_{request.method}"
        scale_set_id = self._scale_set_id(captures) if captures else None
        try:
            request[CLAIMS] = self.tokens.check(request.headers.get("Authorization"))
            self._check_api_version(request)
            fault = self.faults.for_request(request.method, request.path)
            if fault is not None:
                fault_answer = await self._apply_fault(request, fault, headers)
                if fault_answer is not None:
                    self._count(operation_name, fault_answer.status, request.method, scale_set_id, request, captures)
                    return fault_answer
            if wrong_method:
                raise ArmError(
                    405, "MethodNotAllowed", f"The requested method {request.method} is not allowed on this resource."
                )
            if route is None:
                raise ArmError(
                    404,
                    "NotFound" if any(p.startswith("microsoft.") for p in lowered) else "InvalidResourceType",
                    f"No route for {request.method} {request.path} in the "
                    "simulated Microsoft.Compute resource provider.",
                )
            self._throttle(request, route, captures, headers)
            response = await route.handler(request, captures)
        except ArmError as error:
            headers.update(error.headers)
            response = _json(error.body(), status=error.status, headers=headers)
            self._count(operation_name, error.status, request.method, scale_set_id, request, captures)
            return response
        response.headers.update(headers)
        self._count(operation_name, response.status, request.method, scale_set_id, request, captures)
        return response

    def _count(
        self,
        operation: str,
        status: int,
        method: str,
        scale_set_id: str | None,
        request: web.Request,
        captures: dict[str, str],
    ) -> None:
        self.requests[operation] += 1
        self.world.count_request(operation, captures)
        self.responses[operation][str(status)] += 1
        if status == 429:
            self.throttled += 1
        if method != "GET" and status < 300:
            self.writes += 1
        self.world.record(
            {
                "kind": "request",
                "method": method,
                "path": request.path,
                "operation": operation,
                "status": status,
                "scaleSet": scale_set_id,
                "query": dict(request.query) if request.query else None,
            }
        )

    def _scale_set_id(self, captures: dict[str, str]) -> str | None:
        if "vmss" not in captures:
            return None
        return (
            f"/subscriptions/{captures['sub']}/resourceGroups/{captures['rg']}/providers/Microsoft.Compute"
            f"/virtualMachineScaleSets/{captures['vmss']}"
        )

    def _check_api_version(self, request: web.Request) -> None:
        version = request.query.get("api-version")
        if not version:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if not _API_VERSION.match(version):
            raise ArmError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. The supported versions are '{MIN_API_VERSION}' and later.",
            )
        if version[:10] < MIN_API_VERSION:
            raise ArmError(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for location 'eastus' and API version "
                f"'{version}' for type 'virtualMachineScaleSets'. The supported api-versions are "
                f"'{MIN_API_VERSION}' and later.",
            )

    def _retry_after(self, simulated_seconds: float) -> str:
        return str(int(simulated_seconds / self.clock.time_scale))

    async def _apply_fault(self, request: web.Request, fault: Any, headers: dict[str, str]) -> web.Response | None:
        if fault.kind == "slow":
            await _hold(request, fault.seconds)
            return None
        if fault.kind == "reset":
            transport = request.transport
            if transport is not None:
                transport.abort()
            raise asyncio.CancelledError
        if fault.kind == "throttle":
            return _json(
                _throttle_body("InjectedThrottle"),
                status=fault.status or 429,
                headers={**headers, "Retry-After": self._retry_after(fault.retry_after)},
            )
        code = fault.code or "InternalServerError"
        return _json(
            ArmError(fault.status, code, f"Injected fault {fault.id}: {code}.").body(),
            status=fault.status,
            headers=headers,
        )

    def _throttle(self, request: web.Request, route: _Route, captures: dict[str, str], headers: dict[str, str]) -> None:
        if route.policy is None:
            return
        resource = captures.get("vmss") or captures.get("op") or request.path
        resource = f"{captures.get('sub', '')}/{captures.get('rg', '')}/{resource}"
        charge = "$skiptoken" not in request.query
        verdict = self.throttler.take(route.policy, captures.get("sub", ""), resource, self.world.now, charge=charge)
        headers["x-ms-ratelimit-remaining-resource"] = verdict.header
        if not verdict.allowed:
            raise ArmError(
                429,
                "OperationNotAllowed",
                "The server rejected the request because too many requests have been received for this subscription.",
                details=_throttle_body(verdict.exhausted)["error"]["details"],
                innererror={"internalErrorCode": "TooManyRequestsReceived"},
                headers={
                    "Retry-After": self._retry_after(max(1.0, verdict.retry_after)),
                    "x-ms-ratelimit-remaining-resource": verdict.header,
                },
            )

    # ------------------------------------------------------------------------------------ routes

    def _arm_routes(self) -> list[_Route]:
        sub = ("subscriptions", "{sub}")
        rg = (*sub, "resourcegroups", "{rg}", "providers", "microsoft.compute")
        vmss = (*rg, "virtualmachinescalesets", "{vmss}")
        vm = (*vmss, "virtualmachines", "{vm}")
        loc = (*sub, "providers", "microsoft.compute", "locations", "{loc}")
        skus = (
            *loc,
            "publishers",
            "{pub}",
            "artifacttypes",
            "vmimage",
            "offers",
            "{offer}",
            "skus",
            "{sku}",
            "versions",
        )
        publishers = (*loc, "publishers")
        offers = (*publishers, "{pub}", "artifacttypes", "vmimage", "offers")
        gallery = (*rg, "galleries", "{gallery}", "images", "{image}", "versions")
        shared = (*loc, "sharedgalleries", "{gallery}", "images", "{image}", "versions", "{version}")
        community = (*loc, "communitygalleries", "{gallery}", "images", "{image}", "versions", "{version}")
        r = _Route
        return [
            r("GET", ("subscriptions",), self._list_subscriptions, "Subscriptions_List", None),
            r("GET", sub, self._get_subscription, "Subscriptions_Get", None),
            r("GET", (*sub, "locations"), self._list_locations, "Subscriptions_ListLocations", None),
            r("GET", ("tenants",), self._list_tenants, "Tenants_List", None),
            r("GET", vmss, self._get_vmss, "VirtualMachineScaleSets_Get", "GetVMScaleSet"),
            r("PUT", vmss, self._put_vmss, "VirtualMachineScaleSets_CreateOrUpdate", "UpdateVMScaleSet"),
            r("PATCH", vmss, self._patch_vmss, "VirtualMachineScaleSets_Update", "UpdateVMScaleSet"),
            r("DELETE", vmss, self._delete_vmss, "VirtualMachineScaleSets_Delete", "DeleteVMScaleSet"),
            r(
                "GET",
                (*rg, "virtualmachinescalesets"),
                self._list_vmss,
                "VirtualMachineScaleSets_List",
                "HighCostGetVMScaleSet",
            ),
            r(
                "GET",
                (*sub, "providers", "microsoft.compute", "virtualmachinescalesets"),
                self._list_vmss,
                "VirtualMachineScaleSets_ListAll",
                "HighCostGetVMScaleSet",
            ),
            r(
                "GET",
                (*vmss, "instanceview"),
                self._vmss_instance_view,
                "VirtualMachineScaleSets_GetInstanceView",
                "HighCostGetVMScaleSet",
            ),
            r(
                "POST",
                (*vmss, "manualupgrade"),
                self._manual_upgrade,
                "VirtualMachineScaleSets_UpdateInstances",
                "VMScaleSetActions",
            ),
            r("POST", (*vmss, "reimage"), self._reimage, "VirtualMachineScaleSets_Reimage", "VMScaleSetActions"),
            r(
                "POST",
                (*vmss, "reimageall"),
                self._reimage_all,
                "VirtualMachineScaleSets_ReimageAll",
                "VMScaleSetActions",
            ),
            r(
                "POST",
                (*vmss, "osrollingupgrade"),
                self._os_rolling_upgrade,
                "VirtualMachineScaleSetRollingUpgrades_StartOSUpgrade",
                "VMScaleSetActions",
            ),
            r(
                "POST",
                (*vmss, "rollingupgrades", "cancel"),
                self._cancel_rolling,
                "VirtualMachineScaleSetRollingUpgrades_Cancel",
                "VMScaleSetActions",
            ),
            r(
                "GET",
                (*vmss, "rollingupgrades", "latest"),
                self._latest_rolling,
                "VirtualMachineScaleSetRollingUpgrades_GetLatest",
                "GetVMScaleSet",
            ),
            r(
                "GET",
                (*vmss, "virtualmachines"),
                self._list_vms,
                "VirtualMachineScaleSetVMs_List",
                "HighCostGetVMScaleSet",
            ),
            r("GET", vm, self._get_vm, "VirtualMachineScaleSetVMs_Get", "GetVMScaleSetVM"),
            r("DELETE", vm, self._delete_vm, "VirtualMachineScaleSetVMs_Delete", "VMScaleSetVMActions"),
            r(
                "GET",
                (*vm, "instanceview"),
                self._vm_instance_view,
                "VirtualMachineScaleSetVMs_GetInstanceView",
                "GetVMScaleSetVM",
            ),
            r("POST", (*vm, "reimage"), self._reimage_vm, "VirtualMachineScaleSetVMs_Reimage", "VMScaleSetVMActions"),
            r("GET", (*loc, "operations", "{op}"), self._operation, "Operations_Get", "GetOperation"),
            r("GET", publishers, self._list_publishers, "VirtualMachineImages_ListPublishers", "GetImage"),
            r("GET", offers, self._list_offers, "VirtualMachineImages_ListOffers", "GetImage"),
            r("GET", (*offers, "{offer}", "skus"), self._list_skus, "VirtualMachineImages_ListSkus", "GetImage"),
            r("GET", skus, self._list_image_versions, "VirtualMachineImages_List", "GetImage"),
            r("GET", (*skus, "{version}"), self._get_image_version, "VirtualMachineImages_Get", "GetImage"),
            r("GET", gallery, self._list_gallery_versions, "GalleryImageVersions_ListByGalleryImage", "GetImage"),
            r("GET", (*gallery, "{version}"), self._get_gallery_version, "GalleryImageVersions_Get", "GetImage"),
            r("GET", (*rg, "images", "{image}"), self._get_managed_image, "Images_Get", "GetImage"),
            r("GET", shared, self._get_shared_version, "SharedGalleryImageVersions_Get", "GetImage"),
            r("GET", community, self._get_community_version, "CommunityGalleryImageVersions_Get", "GetImage"),
        ]

    def _match(self, method: str, lowered: list[str], parts: list[str]) -> tuple[_Route | None, dict[str, str], bool]:
        """The route for a request, its captured names, and whether only the method was wrong."""
        path_matched: dict[str, str] = {}
        for route in self._routes:
            if len(route.pattern) != len(lowered):
                continue
            captures: dict[str, str] = {}
            for token, low, original in zip(route.pattern, lowered, parts, strict=True):
                if token.startswith("{"):
                    captures[token[1:-1]] = original
                elif token != low:
                    break
            else:
                if route.method == method:
                    return route, captures, False
                path_matched = captures
        return None, path_matched, bool(path_matched)

    # ---------------------------------------------------------------------------- route handlers

    def _find(self, captures: dict[str, str]) -> ScaleSet:
        return self.world.find(captures["sub"], captures["rg"], captures["vmss"])

    async def _body(self, request: web.Request, required: bool = True) -> Any:
        if not request.can_read_body:
            if required:
                raise invalid_parameter(
                    "The request content was invalid and could not be deserialized: the body is empty."
                )
            return None
        text = await request.text()
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ArmError(
                400, "InvalidRequestContent", f"The request content was invalid and could not be deserialized: {error}."
            ) from None

    def _operation_urls(self, request: web.Request, operation: Operation) -> dict[str, str]:
        version = request.query.get("api-version", "")
        base = (
            f"{self._base(request)}/subscriptions/{operation.subscription}/providers/Microsoft.Compute/locations/"
            f"{operation.location}/operations/{operation.op_id}"
        )
        query = {"p": str(uuid.uuid5(uuid.NAMESPACE_OID, operation.op_id)), "api-version": version}
        return {
            "Azure-AsyncOperation": f"{base}?{urlencode(query)}",
            "Location": f"{base}?{urlencode({**query, 'monitor': 'true'})}",
        }

    def _accepted(self, request: web.Request, operation: Operation) -> web.Response:
        urls = self._operation_urls(request, operation)
        return web.Response(
            status=202, headers={**urls, "Retry-After": self._retry_after(LRO_RETRY_AFTER), "Content-Length": "0"}
        )

    def _model_answer(
        self, request: web.Request, scale_set: ScaleSet, operation: Operation, status: int
    ) -> web.Response:
        urls = self._operation_urls(request, operation)
        return _json(
            render.scale_set(scale_set),
            status=status,
            headers={
                "Azure-AsyncOperation": urls["Azure-AsyncOperation"],
                "ETag": f'"{scale_set.etag}"',
                "Retry-After": self._retry_after(LRO_RETRY_AFTER),
            },
        )

    async def _get_vmss(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        scale_set = self._find(captures)
        return _json(render.scale_set(scale_set), headers={"ETag": f'"{scale_set.etag}"'})

    async def _put_vmss(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise invalid_parameter("The request body must be a Virtual Machine Scale Set object.")
        scale_set, operation, created = self.world.create_or_update(
            captures["sub"],
            captures["rg"],
            captures["vmss"],
            body,
            request.headers.get("If-Match"),
            request.headers.get("If-None-Match"),
        )
        return self._model_answer(request, scale_set, operation, 201 if created else 200)

    async def _patch_vmss(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        scale_set = self._find(captures)
        body = await self._body(request)
        if not isinstance(body, dict):
            raise invalid_parameter("The request body must be a Virtual Machine Scale Set update object.")
        operation = self.world.update(scale_set, body, request.headers.get("If-Match"))
        return self._model_answer(request, scale_set, operation, 200)

    async def _delete_vmss(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        key = (captures["sub"], captures["rg"], captures["vmss"])
        try:
            scale_set = self.world.find(*key)
        except ArmError:
            return web.Response(status=204)
        return self._accepted(request, self.world.delete_scale_set(scale_set))

    async def _list_vmss(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        chosen = [
            s
            for s in self.world.scale_sets.values()
            if s.subscription.lower() == captures["sub"].lower()
            and ("rg" not in captures or s.resource_group.lower() == captures["rg"].lower())
        ]
        return _json({"value": [render.scale_set(s) for s in chosen]})

    async def _vmss_instance_view(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        scale_set = self._find(captures)
        self.world._require_uniform(scale_set, "Get Virtual Machine Scale Set Instance View")
        return _json(render.scale_set_instance_view(scale_set, self.clock))

    async def _manual_upgrade(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        scale_set = self._find(captures)
        body = await self._body(request, required=False)
        return self._accepted(request, self.world.manual_upgrade(scale_set, body))

    async def _reimage(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        scale_set = self._find(captures)
        body = await self._body(request, required=False)
        ids = body.get("instanceIds") if isinstance(body, dict) else None
        return self._accepted(request, self.world.reimage(scale_set, ids, "VirtualMachineScaleSets_Reimage"))

    async def _reimage_all(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        scale_set = self._find(captures)
        body = await self._body(request, required=False)
        ids = body.get("instanceIds") if isinstance(body, dict) else None
        return self._accepted(request, self.world.reimage(scale_set, ids, "VirtualMachineScaleSets_ReimageAll"))

    async def _os_rolling_upgrade(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        return self._accepted(request, self.world.start_os_rolling_upgrade(self._find(captures)))

    async def _cancel_rolling(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        return self._accepted(request, self.world.cancel_rolling_upgrade(self._find(captures)))

    async def _latest_rolling(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        scale_set = self._find(captures)
        if scale_set.rolling is None:
            raise ArmError(
                404, "NotFound", f"No rolling upgrade has been run on Virtual Machine Scale Set '{scale_set.name}'."
            )
        return _json(render.rolling_upgrade(scale_set, scale_set.rolling, self.clock))

    async def _list_vms(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        scale_set = self._find(captures)
        self.world._require_uniform(scale_set, "List Virtual Machine Scale Set VMs")
        query = request.query
        expand = (query.get("$expand") or "").lower() == "instanceview"
        select = (query.get("$select") or "").lower().replace(" ", "")
        only_power = False
        instances = scale_set.sorted_instances()
        flt = " ".join((query.get("$filter") or "").split()).lower()
        if flt:
            if flt in ("properties/latestmodelapplied eq true", "properties/latestmodelapplied eq false"):
                wanted = flt.endswith("true")
                instances = [i for i in instances if (i.profile_version == scale_set.profile_version) == wanted]
            elif flt == "startswith(instanceview/statuses/code, 'powerstate') eq true":
                expand, only_power = True, True
            else:
                raise invalid_parameter(
                    f"The $filter '{query['$filter']}' is not supported. Supported filters are "
                    "'properties/latestModelApplied eq true|false' and "
                    "\"startswith(instanceView/statuses/code, 'PowerState') eq true\".",
                    "$filter",
                )
        if select in ("instanceview", "instanceview/statuses"):
            expand = True
            only_power = only_power or False
        try:
            skip = int(query.get("$skiptoken", "0"))
        except ValueError:
            raise invalid_parameter("The $skiptoken is invalid.", "$skiptoken") from None
        page = instances[skip : skip + self.config.page_size]
        body: dict[str, Any] = {
            "value": [
                render.vm(scale_set, i, self.clock, expand_instance_view=expand, only_power=only_power) for i in page
            ]
        }
        if skip + self.config.page_size < len(instances):
            params = {k: v for k, v in query.items() if k != "$skiptoken"}
            params["$skiptoken"] = str(skip + self.config.page_size)
            body["nextLink"] = f"{self._base(request)}{request.path}?{urlencode(params)}"
        return _json(body)

    async def _get_vm(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        scale_set = self._find(captures)
        self.world._require_uniform(scale_set, "Get Virtual Machine Scale Set VM")
        instance = self.world.instance(scale_set, captures["vm"])
        expand = (request.query.get("$expand") or "").lower() == "instanceview"
        return _json(
            render.vm(scale_set, instance, self.clock, expand_instance_view=expand),
            headers={"ETag": f'"{instance.etag}"'},
        )

    async def _vm_instance_view(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        scale_set = self._find(captures)
        self.world._require_uniform(scale_set, "Get Virtual Machine Scale Set VM Instance View")
        return _json(render.instance_view(scale_set, self.world.instance(scale_set, captures["vm"]), self.clock))

    async def _reimage_vm(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        scale_set = self._find(captures)
        self.world.instance(scale_set, captures["vm"])
        operation = self.world.reimage(scale_set, [captures["vm"]], "VirtualMachineScaleSetVMs_Reimage")
        return self._accepted(request, operation)

    async def _delete_vm(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        scale_set = self._find(captures)
        return self._accepted(request, self.world.delete_instance(scale_set, captures["vm"]))

    async def _operation(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        operation = self.world.operation(captures["sub"], captures["op"])
        running = operation.status == "InProgress"
        retry = {"Retry-After": self._retry_after(POLL_RETRY_AFTER)} if running else {}
        if request.query.get("monitor", "").lower() == "true":
            if running:
                return web.Response(status=202, headers={**retry, "Location": str(request.url), "Content-Length": "0"})
            if operation.status == "Succeeded":
                return web.Response(status=200, headers={"Content-Length": "0"})
            error = operation.error or {"code": "OperationFailed", "message": "The operation failed."}
            return _json({"error": error}, status=400)
        return _json(render.operation(operation, self.clock), headers=retry)

    def _image_names(self, request: web.Request, captures: dict[str, str], names: list[str]) -> web.Response:
        """A ``VirtualMachineImageResource`` list: a bare JSON array of ``{name, location, id}``."""
        prefix = request.path.rstrip("/")
        return _json([{"location": captures["loc"], "name": name, "id": f"{prefix}/{name}"} for name in names])

    async def _list_publishers(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        return self._image_names(request, captures, self.world.catalog.publishers())

    async def _list_offers(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        offers = self.world.catalog.offers(captures["pub"])
        if not offers:
            raise ArmError(404, "NotFound", f"Artifact: VMImage was not found for publisher '{captures['pub']}'.")
        return self._image_names(request, captures, offers)

    async def _list_skus(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        skus = self.world.catalog.skus(captures["pub"], captures["offer"])
        if not skus:
            raise ArmError(
                404,
                "NotFound",
                f"Artifact: VMImage was not found for publisher '{captures['pub']}' and offer '{captures['offer']}'.",
            )
        return self._image_names(request, captures, skus)

    async def _list_image_versions(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        versions = self.world.catalog.platform_versions(captures["pub"], captures["offer"], captures["sku"])
        if not versions:
            raise ArmError(
                404,
                "NotFound",
                f"Artifact: VMImage was not found for publisher '{captures['pub']}', "
                f"offer '{captures['offer']}' and sku '{captures['sku']}'.",
            )
        if "desc" in (request.query.get("$orderby") or "").lower():
            versions = versions[::-1]
        if request.query.get("$top"):
            versions = versions[: max(0, int(request.query["$top"]))]
        prefix = request.path.rstrip("/")
        return _json([{"location": captures["loc"], "name": v, "id": f"{prefix}/{v}"} for v in versions])

    async def _get_image_version(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        versions = self.world.catalog.platform_versions(captures["pub"], captures["offer"], captures["sku"])
        match = [v for v in versions if v.lower() == captures["version"].lower()]
        if not match:
            raise ArmError(404, "NotFound", "Artifact: VMImage was not found.")
        os_type = "Windows" if captures["pub"].lower().startswith("microsoftwindows") else "Linux"
        return _json(
            {
                "location": captures["loc"],
                "name": match[0],
                "id": request.path,
                "properties": {
                    "osImage": {"operatingSystem": os_type},
                    "hyperVGeneration": "V2",
                    "architecture": "x64",
                    "dataDiskImages": [],
                },
            }
        )

    def _gallery_prefix(self, captures: dict[str, str]) -> str:
        return (
            f"/subscriptions/{captures['sub']}/resourceGroups/{captures['rg']}/providers/Microsoft.Compute/"
            f"galleries/{captures['gallery']}/images/{captures['image']}"
        )

    def _gallery_version_body(self, version: GalleryVersion) -> dict[str, Any]:
        """A ``GalleryImageVersion`` in the shape of the REST spec's example (GalleryRP/stable/2024-03-03/examples/
        galleryExamples/GalleryImageVersion_ListByGalleryImage.json); ``location``, the gallery's, is here the
        first target region."""
        return {
            "id": version.id,
            "name": version.name,
            "type": "Microsoft.Compute/galleries/images/versions",
            "location": version.target_regions[0].name,
            "tags": {},
            "properties": {
                "publishingProfile": {
                    "targetRegions": [
                        {
                            "name": region.name,
                            "regionalReplicaCount": 1,
                            "storageAccountType": "Standard_LRS",
                            "excludeFromLatest": region.exclude_from_latest,
                        }
                        for region in version.target_regions
                    ],
                    "replicaCount": 1,
                    "excludeFromLatest": version.exclude_from_latest,
                    "publishedDate": version.published_date,
                    "storageAccountType": "Standard_LRS",
                },
                "storageProfile": {"osDiskImage": {"sizeInGB": 30, "hostCaching": "ReadWrite"}},
                "provisioningState": "Succeeded",
            },
        }

    def _not_found(self, captures: dict[str, str], resource: str) -> ArmError:
        return ArmError(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.Compute/{resource}' under resource group '{captures['rg']}' was not found. "
            "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
        )

    async def _list_gallery_versions(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        versions = self.world.catalog.gallery_versions(self._gallery_prefix(captures))
        if not versions:
            # The simulator knows a definition only by its versions: none published, no definition.
            raise self._not_found(captures, f"galleries/{captures['gallery']}/images/{captures['image']}")
        return _json({"value": [self._gallery_version_body(v) for v in versions]})

    async def _get_gallery_version(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        version = self.world.catalog.gallery_version(f"{self._gallery_prefix(captures)}/versions/{captures['version']}")
        if version is None:
            name = f"galleries/{captures['gallery']}/images/{captures['image']}/versions/{captures['version']}"
            raise self._not_found(captures, name)
        return _json(self._gallery_version_body(version))

    async def _get_managed_image(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        image_id = (
            f"/subscriptions/{captures['sub']}/resourceGroups/{captures['rg']}/providers/"
            f"Microsoft.Compute/images/{captures['image']}"
        )
        if image_id.lower() not in self.world.catalog.ids:
            raise self._not_found(captures, f"images/{captures['image']}")
        return _json(
            {
                "id": image_id,
                "name": captures["image"],
                "type": "Microsoft.Compute/images",
                "location": "eastus",
                "properties": {"provisioningState": "Succeeded"},
            }
        )

    def _directly_shared_version(
        self, captures: dict[str, str], table: dict[str, str], prefix: str, kind: str
    ) -> web.Response:
        unique_id = f"/{prefix}/{captures['gallery']}/Images/{captures['image']}/Versions/{captures['version']}"
        if unique_id.lower() not in table:
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The {kind} gallery image version '{captures['version']}' of image '{captures['image']}' in gallery "
                f"'{captures['gallery']}' was not found in location '{captures['loc']}'.",
            )
        # The shape of the REST spec's examples (GalleryRP/stable/2024-03-03/examples/sharedGalleryExamples/
        # SharedGalleryImageVersion_Get.json, communityGalleryExamples/CommunityGalleryImageVersion_Get.json).
        body: dict[str, Any] = {
            "name": captures["version"],
            "location": captures["loc"],
            "identifier": {"uniqueId": table[unique_id.lower()]},
            "properties": {
                "excludeFromLatest": False,
                "storageProfile": {"osDiskImage": {"diskSizeGB": 30, "hostCaching": "ReadWrite"}},
            },
        }
        if kind == "community":
            body["type"] = "Microsoft.Compute/locations/communityGalleryImageVersion"
        return _json(body)

    async def _get_shared_version(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        return self._directly_shared_version(captures, self.world.catalog.shared, "SharedGalleries", "shared")

    async def _get_community_version(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        return self._directly_shared_version(captures, self.world.catalog.community, "CommunityGalleries", "community")

    # ------------------------------------------------------------------ subscriptions and tenants

    def _subscriptions(self) -> list[str]:
        """Every subscription holding a scale set, as first spelled, in the order they appeared."""
        seen: dict[str, str] = {}
        for scale_set in self.world.scale_sets.values():
            seen.setdefault(scale_set.subscription.lower(), scale_set.subscription)
        return list(seen.values())

    def _known_subscription(self, captures: dict[str, str]) -> str:
        wanted = captures["sub"].lower()
        found = next((s for s in self._subscriptions() if s.lower() == wanted), None)
        if found is None:
            raise directory.subscription_not_found(captures["sub"])
        return found

    async def _list_subscriptions(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        tenant = str(request[CLAIMS].get("tid") or "")
        return _json({"value": [directory.subscription(s, tenant) for s in self._subscriptions()]})

    async def _get_subscription(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        found = self._known_subscription(captures)
        return _json(directory.subscription(found, str(request[CLAIMS].get("tid") or "")))

    async def _list_locations(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        return _json(directory.locations(self._known_subscription(captures)))

    async def _list_tenants(self, request: web.Request, captures: dict[str, str]) -> web.Response:
        return _json({"value": [directory.tenant(str(request[CLAIMS].get("tid") or ""))]})

    def _cloud_metadata(self, request: web.Request) -> web.Response:
        """Read before any sign-in, so without a token, as ARM serves it."""
        try:
            self._check_api_version(request)
            return _json(directory.cloud_metadata(self._base(request), request.query["api-version"]))
        except ArmError as error:
            return _json(error.body(), status=error.status)

    # ---------------------------------------------------------------------------------- identity

    async def _token(self, request: web.Request, tenant: str) -> web.Response:
        if request.method != "POST":
            return _json({"error": "invalid_request", "error_description": "Use POST."}, status=405)
        form = await request.post()
        client_id = str(form.get("client_id") or "")
        secret = str(form.get("client_secret") or form.get("client_assertion") or "")
        grant = str(form.get("grant_type") or "")
        if grant != "client_credentials":
            return _json(
                {
                    "error": "unsupported_grant_type",
                    "error_description": f"AADSTS70003: The grant type '{grant}' is not supported.",
                },
                status=400,
            )
        if not client_id or not secret:
            return _json(
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000216: 'client_assertion', "
                    "'client_secret' or 'request' is required for the 'client_credentials' grant type.",
                },
                status=401,
            )
        return _json(self.tokens.issue(tenant, client_id, audience_of_scope(str(form.get("scope") or ""))))

    def _openid(self, request: web.Request, tenant: str) -> web.Response:
        base = f"{self._base(request)}/{tenant}"
        return _json(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "token"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            }
        )

    def _managed_identity(self, request: web.Request) -> web.Response:
        if request.headers.get("Metadata", "").lower() != "true":
            return _json(
                {"error": "invalid_request", "error_description": "Required metadata header not specified"}, status=400
            )
        resource = request.query.get("resource") or "https://management.azure.com/"
        client_id = request.query.get("client_id") or "system-assigned"
        token = self.tokens.issue("managed-identity", client_id, resource)
        token["expires_in"] = str(token["expires_in"])
        token["expires_on"] = str(token["expires_on"])
        return _json(token)

    # ------------------------------------------------------------------------------- control API

    async def _control(self, request: web.Request) -> web.StreamResponse:
        self.world.advance()
        tail = request.match_info["tail"].strip("/").lower()
        try:
            body = await self._body(request, required=False) if request.method in ("POST", "PUT") else None
            answer = self._control_answer(request, tail, body)
        except ArmError as error:
            return _json(error.body(), status=error.status)
        return answer

    def _control_answer(self, request: web.Request, tail: str, body: Any) -> web.Response:
        method = request.method
        if tail == "scalesets" and method == "POST":
            if not isinstance(body, dict):
                raise invalid_parameter("Send a JSON object describing the scale set.")
            return _json({"id": self.world.create_from_control(body).id}, status=201)
        if tail == "scalesets" and method == "GET":
            return _json({"value": [s.id for s in self.world.scale_sets.values()]})
        if tail == "images" and method == "POST":
            if not isinstance(body, dict):
                raise invalid_parameter("Send a JSON object describing the image.")
            self.world.catalog.publish(body, now=iso(self.clock.wall_time(self.world.now)))
            return _json({"published": body}, status=201)
        if tail == "faults" and method == "POST":
            if not isinstance(body, dict):
                raise invalid_parameter("Send a JSON object describing the fault.")
            return _json({"id": self.faults.add(body).id}, status=201)
        if tail == "faults" and method == "GET":
            return _json({"value": [f.describe() for f in self.faults.faults]})
        if tail == "faults" and method == "DELETE":
            self.faults.clear()
            self.world.release_stuck()
            return _json({"cleared": True})
        if tail == "audit" and method == "GET":
            return _json({"entries": self._audit(request)})
        if tail == "stats" and method == "GET":
            return _json(
                {
                    "requests": dict(self.requests),
                    "responses": {op: dict(codes) for op, codes in self.responses.items()},
                    "throttled": self.throttled,
                    "writes": self.writes,
                    "tokensIssued": self.tokens.issued,
                    **self.world.stats(),
                }
            )
        if tail == "clock" and method == "POST":
            if (
                not isinstance(body, dict)
                or not isinstance(body.get("timeScale"), int | float)
                or body["timeScale"] <= 0
            ):
                raise invalid_parameter('Send {"timeScale": <positive number>}.', "timeScale")
            self.clock.set_time_scale(float(body["timeScale"]))
        if tail == "clock" and method in ("GET", "POST"):
            return _json({"timeScale": self.clock.time_scale, "simTime": round(self.clock.now(), 3)})
        if tail == "tokens" and method == "DELETE":
            self.tokens.revoke_all()
            return _json({"revoked": True})
        raise ArmError(404, "NotFound", f"No control route {method} /_sim/{tail}.")

    def _audit(self, request: web.Request) -> list[dict[str, Any]]:
        since = int(request.query.get("since", "0"))
        kind = request.query.get("kind")
        wanted = (request.query.get("scaleSet") or "").lower()
        entries = []
        for entry in self.world.audit:
            if entry["seq"] <= since or (kind and entry["kind"] != kind):
                continue
            if wanted:
                scale_set = str(entry.get("scaleSet") or "").lower()
                if scale_set != wanted and not scale_set.endswith(f"/{wanted}"):
                    continue
            entries.append(entry)
        return entries


def _throttle_body(policy: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    detail = json.dumps(
        {
            "operationGroup": policy,
            "startTime": now,
            "endTime": now,
            "allowedRequestCount": 0,
            "measuredRequestCount": 1,
        }
    )
    return {
        "error": {
            "code": "OperationNotAllowed",
            "message": "The server rejected the request because too many requests have been received "
            "for this subscription.",
            "details": [{"code": "TooManyRequests", "target": policy, "message": detail}],
            "innererror": {"internalErrorCode": "TooManyRequestsReceived"},
        }
    }


async def _hold(request: web.Request, seconds: float) -> None:
    """Holds the answer ``seconds`` (real time), as a server that does not answer holds it. A client that gives up
    and closes its connection gets nothing, and the request goes no further: nothing is left waiting that would
    hold the simulator's shutdown, and a held write is not carried out long after its client went away."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while (left := until - loop.time()) > 0:
        transport = request.transport
        if transport is None or transport.is_closing():
            raise asyncio.CancelledError
        await asyncio.sleep(min(left, 0.1))


class SimulatorThread:
    """Runs a ``Simulator`` on a thread with its own event loop, for synchronous callers and tests."""

    def __init__(self, config: SimulatorConfig) -> None:
        if config.ca_file == SimulatorConfig.ca_file:
            config = SimulatorConfig(**{**config.__dict__, "ca_file": Path(tempfile.mkdtemp()) / "sim-ca.pem"})
        self.simulator = Simulator(config)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="azure-simulator", daemon=True)

    @property
    def url(self) -> str:
        return self.simulator.url

    @property
    def ca_file(self) -> Path:
        return self.simulator.ca_file

    def __enter__(self) -> SimulatorThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.simulator.start(), self._loop).result(timeout=30)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self.simulator.stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
