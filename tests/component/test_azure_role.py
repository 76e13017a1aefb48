"""The Azure roles in deploy/azure grant exactly what the operator uses: every ARM request the real ``AzureGateway``
sends, and every read Azure checks on the images a model write names, and nothing else.

Learned from behaviour, not from reading the gateway: the gateway is driven through every public method against the
simulator over HTTPS (the real Azure SDK, a real credential), and the simulator's audit log says which requests
reached ARM. A small table below maps each (method, path) to the RBAC action Azure checks for it and to the scope
Azure checks it at, which decides the role file the action belongs in:

* ``scaleset-image-operator-role.json``, assigned at the scale sets' resource group (and at the images' scope);
* ``scaleset-image-operator-image-versions-role.json``, assigned at the subscription: listing a platform image's
  versions is a subscription-level read (Azure answers ``AuthorizationFailed ... over scope
  '/subscriptions/<id>'`` to an identity that holds its roles only on resource groups), and so are the reads of
  one platform image version and of a shared or community gallery's image version (``check_image``), whose paths
  are under ``/subscriptions/<id>/providers/Microsoft.Compute/locations/<region>`` too.

A new gateway method, a new kind of ARM request or a new image kind fails here until the table, the roles and
docs/install.md say what it needs.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from azure.identity.aio import ClientSecretCredential

from component.simkit import (
    ARM_SCOPE,
    CLIENT_ID,
    HEALTH_WARMUP_SECONDS,
    JAMMY,
    JAMMY_VERSIONS,
    RESOURCE_GROUP,
    TENANT_ID,
    UPGRADE_SECONDS,
    jammy,
)
from scaleset_image_operator.azure.gateway import AzureGateway, GatewayOptions
from scaleset_image_operator.core.images import Image, ImageKind
from scaleset_image_operator.core.spec import ScaleSetRef
from scaleset_image_operator.ports import Observation
from scaleset_image_operator.simulator import SimulatorControl, SimulatorThread

ROLES = Path(__file__).resolve().parents[2] / "deploy" / "azure"
SCALE_SET_ROLE = ROLES / "scaleset-image-operator-role.json"
IMAGE_VERSIONS_ROLE = ROLES / "scaleset-image-operator-image-versions-role.json"

AT_RESOURCE_GROUP = "the scale sets' resource group"
AT_SUBSCRIPTION = "the subscription"
AT_IMAGE = "the image the model names"
ROLE_FOR_SCOPE = {AT_RESOURCE_GROUP: SCALE_SET_ROLE, AT_IMAGE: SCALE_SET_ROLE, AT_SUBSCRIPTION: IMAGE_VERSIONS_ROLE}

_SEGMENT = "[^/]+"
_SUBSCRIPTION = f"/subscriptions/{_SEGMENT}"
_SCALE_SET = f"{_SUBSCRIPTION}/resourceGroups/{_SEGMENT}/providers/Microsoft.Compute/virtualMachineScaleSets/{_SEGMENT}"
_LOCATION = f"{_SUBSCRIPTION}/providers/Microsoft.Compute/locations/{_SEGMENT}"
_COMPUTE = f"{_SUBSCRIPTION}/resourceGroups/{_SEGMENT}/providers/Microsoft.Compute"
_GALLERY_IMAGE = f"{_COMPUTE}/galleries/{_SEGMENT}/images/{_SEGMENT}"
_PLATFORM_VERSIONS = (
    f"{_LOCATION}/publishers/{_SEGMENT}/artifacttypes/vmimage/offers/{_SEGMENT}/skus/{_SEGMENT}/versions"
)


@dataclass(frozen=True)
class Permission:
    """An ARM request shape and what Azure authorizes it as."""

    method: str
    path: str
    """Regular expression matched, case-insensitively, against the whole request path."""
    action: str
    scope: str

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and re.fullmatch(self.path, path, re.IGNORECASE) is not None


ARM_REQUESTS = (
    Permission("GET", _SCALE_SET, "Microsoft.Compute/virtualMachineScaleSets/read", AT_RESOURCE_GROUP),
    Permission("PATCH", _SCALE_SET, "Microsoft.Compute/virtualMachineScaleSets/write", AT_RESOURCE_GROUP),
    Permission(
        "GET",
        f"{_SCALE_SET}/virtualMachines",
        "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read",
        AT_RESOURCE_GROUP,
    ),
    Permission(
        "POST",
        f"{_SCALE_SET}/manualupgrade",
        "Microsoft.Compute/virtualMachineScaleSets/manualUpgrade/action",
        AT_RESOURCE_GROUP,
    ),
    # The status URL is subscription-level, but Azure accepts a role on the resource group of the resource the
    # operation acts on ("Track asynchronous Azure operations": permission for tracking async status).
    Permission(
        "GET", f"{_LOCATION}/operations/{_SEGMENT}", "Microsoft.Compute/locations/operations/read", AT_RESOURCE_GROUP
    ),
    Permission(
        "GET",
        _PLATFORM_VERSIONS,
        "Microsoft.Compute/locations/publishers/artifacttypes/offers/skus/versions/read",
        AT_SUBSCRIPTION,
    ),
    # check_image: one version of a platform image (the same action as the list), of a gallery image, a managed
    # image, and a shared or community gallery's version (these two under the subscription's locations).
    Permission(
        "GET",
        f"{_PLATFORM_VERSIONS}/{_SEGMENT}",
        "Microsoft.Compute/locations/publishers/artifacttypes/offers/skus/versions/read",
        AT_SUBSCRIPTION,
    ),
    # resolve_image of a gallery image definition lists its versions; check_image reads one. At the gallery's scope.
    Permission("GET", f"{_GALLERY_IMAGE}/versions", "Microsoft.Compute/galleries/images/versions/read", AT_IMAGE),
    Permission(
        "GET", f"{_GALLERY_IMAGE}/versions/{_SEGMENT}", "Microsoft.Compute/galleries/images/versions/read", AT_IMAGE
    ),
    Permission("GET", f"{_COMPUTE}/images/{_SEGMENT}", "Microsoft.Compute/images/read", AT_IMAGE),
    # Actions of the Microsoft.Compute/locations/sharedGalleries and .../communityGalleries resource types
    # (https://learn.microsoft.com/en-us/azure/role-based-access-control/permissions/compute; the built-in role
    # "Compute Gallery Artifacts Publisher" grants them as Microsoft.Compute/locations/sharedGalleries/*).
    Permission(
        "GET",
        f"{_LOCATION}/sharedGalleries/{_SEGMENT}/images/{_SEGMENT}/versions/{_SEGMENT}",
        "Microsoft.Compute/locations/sharedGalleries/images/versions/read",
        AT_SUBSCRIPTION,
    ),
    Permission(
        "GET",
        f"{_LOCATION}/communityGalleries/{_SEGMENT}/images/{_SEGMENT}/versions/{_SEGMENT}",
        "Microsoft.Compute/locations/communityGalleries/images/versions/read",
        AT_SUBSCRIPTION,
    ),
)

LINKED_IMAGE_READS: dict[ImageKind, tuple[tuple[str, str], ...]] = {
    # A model write that names a gallery or managed image makes Azure check that the writer may read that image
    # (LinkedAuthorizationFailed otherwise), at the image's own scope.
    ImageKind.ID: (
        (r".*/galleries/[^/]+/images/[^/]+/versions/[^/]+", "Microsoft.Compute/galleries/images/versions/read"),
        (r".*/galleries/[^/]+/images/[^/]+", "Microsoft.Compute/galleries/images/read"),
        (r".*/providers/Microsoft\.Compute/images/[^/]+", "Microsoft.Compute/images/read"),
    ),
    # Marketplace images are public; shared and community gallery images are shared by the gallery's sharing
    # profile, not by RBAC; a VHD is read by the platform from the storage account, not as the caller.
    ImageKind.PLATFORM: (),
    ImageKind.SHARED_GALLERY: (),
    ImageKind.COMMUNITY_GALLERY: (),
    ImageKind.URI: (),
}


def linked_reads(image: Image) -> set[str]:
    """The RBAC actions Azure checks on the image a model write names."""
    for pattern, action in LINKED_IMAGE_READS[image.kind]:
        if re.fullmatch(pattern, image.ref, re.IGNORECASE):
            return {action}
    if LINKED_IMAGE_READS[image.kind]:
        raise AssertionError(f"no linked-access rule for the {image.kind} image {image.ref}: add one")
    return set()


def permission_for(method: str, path: str) -> Permission:
    found = [p for p in ARM_REQUESTS if p.matches(method, path)]
    assert len(found) == 1, (
        f"the gateway sent {method} {path}, which the table of ARM requests maps to {len(found)} RBAC actions: "
        "add the request to ARM_REQUESTS, its action to the role in deploy/azure and to docs/install.md"
    )
    return found[0]


def role(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


# --- driving the gateway --------------------------------------------------------------------------------------------


class Recorder:
    """Calls the gateway's methods by name and remembers which ones were called."""

    def __init__(self, gateway: AzureGateway) -> None:
        self.gateway = gateway
        self.called: set[str] = set()

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        self.called.add(name)
        method: Callable[..., Awaitable[Any]] = getattr(self.gateway, name)
        return method


@dataclass
class Exercise:
    """What one full drive of the gateway left behind."""

    called: set[str]
    requests: list[dict[str, Any]]
    written: list[Image] = field(default_factory=list)
    """Every image the gateway wrote into a model, as Azure's model shows it afterwards."""


def public_async_methods() -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(AzureGateway, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }


async def settled(gateway: Recorder, ref: ScaleSetRef, operation_url: str | None = None) -> Observation:
    """Observes until Azure has finished the last model write or upgrade (a write to a busy model would conflict)."""
    deadline = time.monotonic() + 15
    while True:
        observation: Observation = await gateway.observe(ref, operation_url)
        if not observation.scale_set.busy:
            return observation
        assert time.monotonic() < deadline, f"{ref.name} still busy: {observation.scale_set.provisioning_state}"
        await asyncio.sleep(0.1)


async def write_image(gateway: Recorder, ref: ScaleSetRef, image: Image, written: list[Image]) -> None:
    before = await settled(gateway, ref)
    await gateway.update_model_image(ref, image, before.scale_set.etag)
    after = await settled(gateway, ref)
    assert after.scale_set.model_image is not None and after.scale_set.model_image.same_as(image), (
        f"the model of {ref.name} shows {after.scale_set.model_image}, not {image.key()}"
    )
    written.append(after.scale_set.model_image)


@pytest.fixture(scope="module")
def exercise(simulator: SimulatorThread, session_control: SimulatorControl) -> Exercise:
    """Every public method of a production-built AzureGateway, with each kind of image the operator can write, in a
    subscription of this module's own. Driven once for the module (on an event loop of its own: the simulator runs
    on its own thread), read by every test below."""
    return asyncio.run(drive(simulator, session_control, str(uuid.uuid4())))


async def drive(simulator: SimulatorThread, control: SimulatorControl, subscription_id: str) -> Exercise:
    images = f"/subscriptions/{subscription_id}/resourceGroups/rg-images/providers/Microsoft.Compute"
    gallery_image = f"{images}/galleries/gallery/images/web"
    managed_image = f"{images}/images/web-2024-11"
    shared = "/SharedGalleries/contoso-1a2b/Images/web/Versions/1.0.0"
    community = "/CommunityGalleries/contoso-public-1a2b/Images/web/Versions/1.0.0"
    vhds = (
        "https://contoso.blob.core.windows.net/vhds/web-1.vhd",
        "https://contoso.blob.core.windows.net/vhds/web-2.vhd",
    )
    for body in (
        {"id": f"{gallery_image}/versions/1.0.0"},
        {"id": f"{gallery_image}/versions/1.1.0"},
        {"id": managed_image},
        {"sharedGalleryImageId": shared},
        {"communityGalleryImageId": community},
        {"uri": vhds[1]},
    ):
        control.publish_image(**body)

    def scale_set(**body: Any) -> ScaleSetRef:
        name = f"vmss-{uuid.uuid4().hex[:10]}"
        control.create_scale_set(
            subscriptionId=subscription_id,
            resourceGroup=RESOURCE_GROUP,
            name=name,
            upgradeSeconds=UPGRADE_SECONDS,
            healthWarmupSeconds=HEALTH_WARMUP_SECONDS,
            **body,
        )
        return ScaleSetRef(subscription_id, RESOURCE_GROUP, name)

    rolling_out = scale_set(image=jammy(), capacity=2)
    automatic = scale_set(image=jammy(), capacity=1, upgradePolicy="Automatic")
    on_vhd = scale_set(image={"uri": vhds[0]}, capacity=1)
    # Azure refuses a platform <-> custom image change in place: custom images go to a scale set on one already.
    on_gallery = scale_set(image={"id": f"{gallery_image}/versions/1.0.0"}, capacity=1)

    ca = str(simulator.ca_file)
    async with ClientSecretCredential(
        TENANT_ID, CLIENT_ID, "any-secret", authority=simulator.url, connection_verify=ca
    ) as credential:
        options = GatewayOptions(arm_endpoint=simulator.url, arm_scope=ARM_SCOPE, connection_verify=ca)
        gateway = Recorder(AzureGateway(credential, options, clock=time.monotonic))
        written: list[Image] = []
        try:
            first = await gateway.observe(rolling_out, None)
            assert await gateway.model_etag(rolling_out) == first.scale_set.etag
            latest = await gateway.resolve_image(
                rolling_out, Image.platform(**JAMMY, version="latest"), first.scale_set.location
            )
            assert latest.version == JAMMY_VERSIONS[-1]
            await write_image(gateway, rolling_out, latest, written)
            instance = first.scale_set.instances[0].instance_id
            operation = await gateway.upgrade_instances(rolling_out, (instance,))
            assert operation, "manualUpgrade answered no operation URL"
            assert (await gateway.operation_status(rolling_out, operation)).url == operation
            await settled(gateway, rolling_out, operation)
            location = first.scale_set.location
            definition = Image.of(ImageKind.ID, gallery_image)
            newest = await gateway.resolve_image(rolling_out, definition, location)
            assert newest.same_as(Image.of(ImageKind.ID, f"{gallery_image}/versions/1.1.0"))
            for existing in (
                Image.platform(**JAMMY, version=JAMMY_VERSIONS[0]),
                Image.of(ImageKind.ID, f"{gallery_image}/versions/1.0.0"),
                Image.of(ImageKind.ID, managed_image),
                Image.of(ImageKind.SHARED_GALLERY, shared),
                Image.of(ImageKind.COMMUNITY_GALLERY, community),
                Image.of(ImageKind.URI, vhds[1]),
            ):
                await gateway.check_image(rolling_out, existing, location)
            for image in (
                Image.of(ImageKind.ID, f"{gallery_image}/versions/1.0.0"),
                Image.of(ImageKind.ID, gallery_image),
                Image.of(ImageKind.ID, managed_image),
                Image.of(ImageKind.SHARED_GALLERY, shared),
                Image.of(ImageKind.COMMUNITY_GALLERY, community),
            ):
                await write_image(gateway, on_gallery, image, written)
            await write_image(gateway, on_vhd, Image.of(ImageKind.URI, vhds[1]), written)

            model = await settled(gateway, automatic)
            await gateway.set_manual_upgrade_mode(automatic, model.scale_set.etag)
            assert (await settled(gateway, automatic)).scale_set.upgrade_mode == "Manual"
        finally:
            await gateway.close()

    audited = [
        e
        for e in control.audit(kind="request")
        if e["path"].lower().startswith(f"/subscriptions/{subscription_id}/".lower())
    ]
    return Exercise(called=gateway.called, requests=audited, written=written)


def actions_used(exercise: Exercise) -> dict[str, set[str]]:
    """RBAC action -> the scopes Azure checks it at, for everything the exercise made Azure authorize."""
    used: dict[str, set[str]] = {}
    for request in exercise.requests:
        permission = permission_for(request["method"], request["path"])
        used.setdefault(permission.action, set()).add(permission.scope)
    for image in exercise.written:
        for action in linked_reads(image):
            used.setdefault(action, set()).add(AT_IMAGE)
    return used


# --- the tests ------------------------------------------------------------------------------------------------------


def test_the_exercise_drives_every_public_method_of_the_gateway(exercise: Exercise) -> None:
    missing = public_async_methods() - exercise.called
    assert not missing, (
        f"AzureGateway.{', '.join(sorted(missing))} is not driven by the exercise here: call it in the `exercise` "
        "fixture, then map its ARM requests in ARM_REQUESTS and grant them in deploy/azure"
    )


def test_the_exercise_writes_every_kind_of_image_into_a_model(exercise: Exercise) -> None:
    assert {image.kind for image in exercise.written} == set(ImageKind)


def test_every_request_the_gateway_sent_succeeded(exercise: Exercise) -> None:
    failed = [f"{e['method']} {e['path']} -> {e['status']}" for e in exercise.requests if e["status"] >= 300]
    assert exercise.requests and not failed


def test_the_roles_grant_exactly_the_actions_the_gateway_made_azure_check(exercise: Exercise) -> None:
    granted = set(role(SCALE_SET_ROLE)["Actions"]) | set(role(IMAGE_VERSIONS_ROLE)["Actions"])
    used = set(actions_used(exercise))

    assert (sorted(used - granted), sorted(granted - used)) == ([], []), (
        "(used but not granted, granted but never used) by the roles in deploy/azure"
    )


def test_each_action_is_in_the_role_assigned_where_azure_checks_it(exercise: Exercise) -> None:
    where: dict[Path, set[str]] = {SCALE_SET_ROLE: set(), IMAGE_VERSIONS_ROLE: set()}
    for action, scopes in actions_used(exercise).items():
        assert len({ROLE_FOR_SCOPE[s] for s in scopes}) == 1, f"{action} is checked at {scopes}"
        where[ROLE_FOR_SCOPE[next(iter(scopes))]].add(action)

    assert {path.name: set(role(path)["Actions"]) for path in where} == {
        path.name: actions for path, actions in where.items()
    }


def test_the_gateway_sends_each_kind_of_request_the_table_knows(exercise: Exercise) -> None:
    sent = {permission_for(e["method"], e["path"]) for e in exercise.requests}
    assert sent == set(ARM_REQUESTS), "a row of ARM_REQUESTS matches nothing the gateway sends: remove it"


@pytest.mark.parametrize("path", [SCALE_SET_ROLE, IMAGE_VERSIONS_ROLE], ids=lambda p: p.name)
def test_a_role_file_has_the_fields_of_az_role_definition_create_and_names_each_action(path: Path) -> None:
    definition = role(path)

    assert set(definition) == {
        "Name",
        "IsCustom",
        "Description",
        "Actions",
        "NotActions",
        "DataActions",
        "NotDataActions",
        "AssignableScopes",
    }
    assert definition["IsCustom"] is True and definition["Name"] and definition["Description"]
    assert definition["Actions"] == sorted(set(definition["Actions"])), "Actions: sorted, each once"
    assert not any("*" in action for action in definition["Actions"]), "no wildcards: name each action"
    assert (definition["NotActions"], definition["DataActions"], definition["NotDataActions"]) == ([], [], [])
    assert definition["AssignableScopes"] == ["/subscriptions/REPLACE-WITH-SUBSCRIPTION-ID"]


def test_the_table_matches_request_paths_the_way_azure_names_them() -> None:
    sub = "/subscriptions/00000000-0000-0000-0000-000000000000"
    vmss = f"{sub}/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-web"
    assert permission_for("GET", vmss).action.endswith("virtualMachineScaleSets/read")
    assert permission_for("GET", f"{vmss}/virtualMachines").action.endswith("virtualMachines/read")
    assert permission_for("POST", f"{vmss}/manualUpgrade").action.endswith("manualUpgrade/action")
    with pytest.raises(AssertionError, match="maps to 0 RBAC actions"):
        permission_for("POST", f"{vmss}/reimage")
    with pytest.raises(AssertionError, match="maps to 0 RBAC actions"):
        permission_for("DELETE", vmss)
