"""What ARM answers outside the Compute resource provider, for clients that sign in before they manage anything:
the cloud's metadata (``GET /metadata/endpoints``), the subscriptions and tenants the caller can see, and a
subscription's locations (``Microsoft.Resources``).

The Azure CLI needs all of them: ``az cloud register`` reads the metadata, ``az login`` lists subscriptions, and
``az vm image list --all`` asks for the subscription's locations before it lists images. Pure functions of their
arguments; the shapes are those of the REST specs' examples (sources in docs/simulator.md, "Sign-in and the
directory").

The simulator has one directory and no role assignments: every principal of every tenant sees every subscription
the simulator holds a scale set in, as a subscription of the caller's own tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ArmError

CLOUD_NAME = "AzureSimulator"
METADATA_AUDIENCES = ("https://management.core.windows.net/", "https://management.azure.com/")
"""The audiences of ARM's tokens, in the order public ARM's metadata lists them: clients take the first as the
resource they ask tokens for (the Azure CLI's ``active_directory_resource_id``)."""

METADATA_OBJECT_SINCE = "2022-09-01"
"""From this api-version on, ``/metadata/endpoints`` answers the one cloud it belongs to; before it, an array of
clouds (Azure/azure-cli#29283, manicminer/hamilton#169)."""
METADATA_OLDEST = "2019-05-01"


@dataclass(frozen=True)
class Region:
    """One entry of ``Subscriptions_ListLocations``."""

    name: str
    display_name: str
    geography: str
    physical_location: str

    def body(self, subscription: str) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{subscription}/locations/{self.name}",
            "name": self.name,
            "type": "Region",
            "displayName": self.display_name,
            "regionalDisplayName": f"({self.geography}) {self.display_name}",
            "metadata": {
                "regionType": "Physical",
                "regionCategory": "Recommended",
                "geographyGroup": self.geography,
                "physicalLocation": self.physical_location,
            },
        }


REGIONS = (
    Region("eastus", "East US", "US", "Virginia"),
    Region("eastus2", "East US 2", "US", "Virginia"),
    Region("westus", "West US", "US", "California"),
    Region("westus2", "West US 2", "US", "Washington"),
    Region("centralus", "Central US", "US", "Iowa"),
    Region("northeurope", "North Europe", "Europe", "Ireland"),
    Region("westeurope", "West Europe", "Europe", "Netherlands"),
)
"""The regions every simulated subscription offers (the scale sets' default location, ``eastus``, first)."""


def cloud_metadata(base_url: str, api_version: str) -> Any:
    """``GET /metadata/endpoints?api-version=…``: this ARM's own endpoints, for ``az cloud register``.

    The sign-in endpoint is the simulator itself (it serves the token endpoint). There is no ``vmImageAliasDoc``:
    the Azure CLI then uses the alias list it ships, where public Azure's points it at GitHub."""
    if api_version[:10] < METADATA_OLDEST:
        raise ArmError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{api_version}' is invalid. The supported versions are '{METADATA_OLDEST}' and later.",
        )
    root = base_url.rstrip("/")
    cloud = {
        "name": CLOUD_NAME,
        "portal": root,
        "resourceManager": f"{root}/",
        "authentication": {
            "loginEndpoint": root,
            "audiences": list(METADATA_AUDIENCES),
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "suffixes": {},
    }
    if api_version[:10] >= METADATA_OBJECT_SINCE:
        return cloud
    return [cloud]


def subscription(subscription_id: str, tenant_id: str) -> dict[str, Any]:
    """One ``Subscription`` (``Subscriptions_Get``, and each of ``Subscriptions_List``)."""
    return {
        "id": f"/subscriptions/{subscription_id}",
        "subscriptionId": subscription_id,
        "tenantId": tenant_id,
        "displayName": f"Simulated subscription {subscription_id}",
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "tags": {},
    }


def subscription_not_found(subscription_id: str) -> ArmError:
    return ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found.")


def tenant(tenant_id: str) -> dict[str, Any]:
    """One ``TenantIdDescription`` (``Tenants_List``)."""
    return {
        "id": f"/tenants/{tenant_id}",
        "tenantId": tenant_id,
        "countryCode": "US",
        "displayName": "Simulated directory",
        "domains": ["simulator.onmicrosoft.com"],
        "tenantCategory": "Home",
        "defaultDomain": "simulator.onmicrosoft.com",
        "tenantType": "AAD",
    }


def locations(subscription_id: str) -> dict[str, Any]:
    return {"value": [region.body(subscription_id) for region in REGIONS]}
