"""Counts, percentages and durations as people write them; images as Azure names and compares them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scaleset_image_operator.core.images import Image, ImageKind
from scaleset_image_operator.core.quantities import (
    IntOrPercent,
    format_duration,
    parse_duration,
    parse_int_or_percent,
)

SUB = "00000000-0000-0000-0000-000000000000"
JAMMY = Image.platform("Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2", "22.04.202410020")
GALLERY = Image.of(
    ImageKind.ID,
    f"/subscriptions/{SUB}/resourceGroups/rg-images/providers/Microsoft.Compute/galleries/g/images/web/versions/1.4.0",
)
MANAGED = Image.of(
    ImageKind.ID, f"/subscriptions/{SUB}/resourceGroups/rg-images/providers/Microsoft.Compute/images/web-1.4.0"
)
SHARED = Image.of(ImageKind.SHARED_GALLERY, "/SharedGalleries/abc-SHAREDGALLERY/Images/web/Versions/1.4.0")
COMMUNITY = Image.of(ImageKind.COMMUNITY_GALLERY, "/CommunityGalleries/web-1a2b/Images/web/Versions/1.4.0")
VHD = Image.of(ImageKind.URI, "https://account.blob.core.windows.net/vhds/custom.vhd")
EVERY_KIND = [JAMMY, GALLERY, MANAGED, SHARED, COMMUNITY, VHD]


# -- IntOrPercent ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "total", "round_up", "expected"),
    [
        (IntOrPercent(3), 10, True, 3),
        (IntOrPercent(3), 10, False, 3),
        (IntOrPercent(30), 10, True, 30),
        (IntOrPercent(20, percent=True), 3, True, 1),
        (IntOrPercent(20, percent=True), 3, False, 0),
        (IntOrPercent(10, percent=True), 5, False, 0),
        (IntOrPercent(50, percent=True), 5, True, 3),
        (IntOrPercent(50, percent=True), 5, False, 2),
        (IntOrPercent(20, percent=True), 10, True, 2),
        (IntOrPercent(20, percent=True), 10, False, 2),
        (IntOrPercent(100, percent=True), 7, True, 7),
        (IntOrPercent(0, percent=True), 7, True, 0),
        (IntOrPercent(1, percent=True), 0, True, 0),
    ],
)
def test_a_percentage_rounds_up_for_batches_and_down_for_tolerances(
    quantity: IntOrPercent, total: int, round_up: bool, expected: int
) -> None:
    assert quantity.of(total, round_up=round_up) == expected


@given(st.integers(1, 100), st.integers(1, 10_000))
def test_a_percentage_batch_of_a_non_empty_scale_set_is_never_empty_nor_larger_than_it(
    percent: int, total: int
) -> None:
    size = IntOrPercent(percent, percent=True).of(total, round_up=True)
    assert 1 <= size <= total


@pytest.mark.parametrize(("quantity", "text"), [(IntOrPercent(3), "3"), (IntOrPercent(20, percent=True), "20%")])
def test_a_quantity_prints_as_it_was_written(quantity: IntOrPercent, text: str) -> None:
    assert str(quantity) == text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0, IntOrPercent(0)),
        (3, IntOrPercent(3)),
        ("3", IntOrPercent(3)),
        (" 3 ", IntOrPercent(3)),
        ("0%", IntOrPercent(0, percent=True)),
        ("20%", IntOrPercent(20, percent=True)),
        ("100%", IntOrPercent(100, percent=True)),
        ("007%", IntOrPercent(7, percent=True)),
    ],
)
def test_a_count_or_percentage_is_read(raw: Any, expected: IntOrPercent) -> None:
    assert parse_int_or_percent(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        -1,
        "-1",
        10**9,
        "1000000000",
        pytest.param(10**5000, id="huge"),
        "\u0661",
        "\uff11",
        "101%",
        "1000%",
        "20 %",
        "%",
        "20%%",
        "1.5",
        1.5,
        2.0,
        True,
        False,
        None,
        [],
        "",
        "twenty",
    ],
)
def test_anything_else_is_refused_with_a_sentence(raw: Any) -> None:
    with pytest.raises(ValueError, match=r"^must "):
        parse_int_or_percent(raw)


# -- durations -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("30s", 30.0),
        ("90s", 90.0),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1h30m15s", 5415.0),
        ("250ms", 0.25),
        ("1m250ms", 60.25),
        ("1.5h", 5400.0),
        ("0.5s", 0.5),
        ("0s", 0.0),
        ("30s30s", 60.0),
        ("\t45s\n", 45.0),
        (30, 30.0),
        (0, 0.0),
        (2.5, 2.5),
    ],
)
def test_a_duration_is_go_syntax_or_a_number_of_seconds(raw: Any, seconds: float) -> None:
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize(
    "raw",
    ["30", "0", "-5s", "1d", "1w", "1h 30m", "30S", "1H", "s", "", "  ", "PT30S", "30s later", ".5s", "5.s", "1us"],
)
def test_text_in_any_other_syntax_is_not_a_duration(raw: str) -> None:
    with pytest.raises(ValueError, match=r"^must "):
        parse_duration(raw)


@pytest.mark.parametrize(
    "raw", [-1, -0.5, float("nan"), float("inf"), float("-inf"), True, False, None, [30], {"s": 30}]
)
def test_a_negative_endless_or_non_numeric_value_is_not_a_duration(raw: Any) -> None:
    with pytest.raises(ValueError, match=r"^must "):
        parse_duration(raw)


@pytest.mark.parametrize(
    "raw",
    [
        10**9,
        pytest.param(10**400, id="beyond-float"),
        1e300,
        "1" * 13 + "s",
        pytest.param("9" * 400 + "h", id="400-digits"),
        "\u0661s",
    ],
)
def test_an_absurdly_long_or_non_ascii_duration_is_refused(raw: Any) -> None:
    with pytest.raises(ValueError, match=r"^must "):
        parse_duration(raw)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.4, "0s"), (1, "1s"), (59.6, "1m"), (90, "1m30s"), (3600, "1h"), (3661, "1h1m1s"), (86400, "24h")],
)
def test_a_duration_is_printed_in_its_shortest_go_spelling(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(0, 10**7))
def test_a_printed_duration_reads_back_as_the_same_seconds(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


# -- images: comparing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param(
            JAMMY, Image.platform("canonical", "0001-COM-UBUNTU-SERVER-JAMMY", "22_04-LTS-gen2", JAMMY.version)
        ),
        pytest.param(GALLERY, Image.of(ImageKind.ID, GALLERY.ref.lower()), id="id-case"),
        pytest.param(GALLERY, Image.of(ImageKind.ID, GALLERY.ref + "/"), id="id-trailing-slash"),
        pytest.param(SHARED, Image.of(ImageKind.SHARED_GALLERY, SHARED.ref.upper()), id="shared-case"),
        pytest.param(COMMUNITY, Image.of(ImageKind.COMMUNITY_GALLERY, COMMUNITY.ref.lower()), id="community-case"),
        pytest.param(VHD, Image.of(ImageKind.URI, VHD.ref + "/"), id="uri-trailing-slash"),
    ],
)
def test_names_compare_the_way_azure_compares_them(a: Image, b: Image) -> None:
    assert a.same_as(b)
    assert b.same_as(a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param(JAMMY, JAMMY.with_version("22.04.202411010"), id="other-version"),
        pytest.param(JAMMY, JAMMY.with_version("latest"), id="latest-is-not-a-version"),
        pytest.param(Image.platform("P", "O", "S", "1.0"), Image.platform("P", "O", "S", "1.0.0"), id="1.0-vs-1.0.0"),
        pytest.param(VHD, Image.of(ImageKind.URI, VHD.ref.replace("custom", "Custom")), id="blob-names-are-cased"),
        pytest.param(GALLERY, Image.of(ImageKind.SHARED_GALLERY, GALLERY.ref), id="same-text-other-kind"),
        pytest.param(GALLERY, MANAGED, id="other-id"),
        pytest.param(JAMMY, None, id="nothing"),
    ],
)
def test_versions_blob_urls_and_kinds_must_match_exactly(a: Image, b: Image | None) -> None:
    assert not a.same_as(b)


@pytest.mark.parametrize(("version", "latest"), [("latest", True), ("Latest", True), ("22.04.202410020", False)])
def test_latest_is_recognised_in_any_case(version: str, latest: bool) -> None:
    assert JAMMY.with_version(version).is_latest is latest


@pytest.mark.parametrize("image", [GALLERY, SHARED, COMMUNITY, VHD])
def test_only_platform_images_can_ask_for_latest(image: Image) -> None:
    assert not image.is_latest


def test_a_platform_image_is_not_made_from_a_reference() -> None:
    with pytest.raises(ValueError, match=r"Image\.platform"):
        Image.of(ImageKind.PLATFORM, "Canonical:ubuntu:22_04:latest")


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (JAMMY, JAMMY.with_version("22.04.202411010"), True),
        (JAMMY, Image.platform("CANONICAL", "0001-com-ubuntu-server-jammy", "22_04-lts", "1.0"), True),
        (JAMMY, Image.platform("Canonical", "ubuntu-24_04-lts", "server", "24.04.202501010"), False),
        (JAMMY, Image.platform("MicrosoftWindowsServer", "0001-com-ubuntu-server-jammy", "x", "1.0"), False),
        (JAMMY, GALLERY, False),
        (JAMMY, SHARED, False),
        (GALLERY, SHARED, True),
        (VHD, Image.of(ImageKind.URI, "https://other.blob.core.windows.net/vhds/v2.vhd"), True),
        (VHD, GALLERY, False),
        (JAMMY, VHD, False),
    ],
)
def test_a_model_moves_in_place_only_within_a_family(a: Image, b: Image, same: bool) -> None:
    assert a.same_family(b) is same
    assert b.same_family(a) is same


# -- images: keys ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("image", [*EVERY_KIND, JAMMY.with_version("latest")])
def test_an_image_key_reads_back_as_the_same_image(image: Image) -> None:
    assert Image.parse_key(image.key()) == image


def test_a_platform_key_is_the_urn_people_write() -> None:
    assert JAMMY.key() == "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:22.04.202410020"


NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", min_size=1, max_size=20)


@given(NAME, NAME, NAME, NAME)
def test_any_platform_urn_reads_back(publisher: str, offer: str, sku: str, version: str) -> None:
    image = Image.platform(publisher, offer, sku, version)
    assert Image.parse_key(image.key()) == image


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://legacy.example/vhds/a.vhd", Image.of(ImageKind.URI, "http://legacy.example/vhds/a.vhd")),
        (
            "/sharedgalleries/x/images/y/versions/1",
            Image.of(ImageKind.SHARED_GALLERY, "/sharedgalleries/x/images/y/versions/1"),
        ),
        ("/SUBSCRIPTIONS/x/images/y", Image.of(ImageKind.ID, "/SUBSCRIPTIONS/x/images/y")),
    ],
)
def test_keys_are_recognised_by_their_prefix_in_any_case(text: str, expected: Image) -> None:
    assert Image.parse_key(text) == expected


@pytest.mark.parametrize("text", ["", "Canonical:ubuntu:22_04", "Canonical:ubuntu:22_04:", "a:b:c:d:e", "::::", "web"])
def test_a_key_that_names_no_image_reads_as_none(text: str) -> None:
    assert Image.parse_key(text) is None


# -- images: ARM shapes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "os_disk_image", "exact", "expected"),
    [
        pytest.param(
            {"publisher": "Canonical", "offer": "o", "sku": "s", "version": "latest", "exactVersion": "1.2.3"},
            None,
            True,
            Image.platform("Canonical", "o", "s", "1.2.3"),
            id="instance-runs-exact-version",
        ),
        pytest.param(
            {"publisher": "Canonical", "offer": "o", "sku": "s", "version": "latest", "exactVersion": "1.2.3"},
            None,
            False,
            Image.platform("Canonical", "o", "s", "latest"),
            id="model-asks-for-version",
        ),
        pytest.param(
            {"publisher": "Canonical", "offer": "o", "sku": "s", "version": "1.0.0"},
            None,
            True,
            Image.platform("Canonical", "o", "s", "1.0.0"),
            id="no-exact-version-falls-back",
        ),
        pytest.param({"id": GALLERY.ref, "exactVersion": "1.4.0"}, None, True, GALLERY, id="gallery"),
        pytest.param({"sharedGalleryImageId": SHARED.ref}, None, False, SHARED, id="shared"),
        pytest.param({"communityGalleryImageId": COMMUNITY.ref}, None, False, COMMUNITY, id="community"),
        pytest.param(
            {"publisher": None, "offer": None, "sku": None, "version": None, "id": GALLERY.ref},
            None,
            False,
            GALLERY,
            id="nulls-after-a-patch",
        ),
        pytest.param(None, {"uri": VHD.ref}, False, VHD, id="vhd"),
        pytest.param({"id": GALLERY.ref}, {"uri": VHD.ref}, False, VHD, id="vhd-wins"),
        pytest.param({"publisher": "Canonical", "offer": "o"}, None, False, None, id="no-sku"),
        pytest.param({}, {}, False, None, id="empty"),
        pytest.param(None, None, True, None, id="nothing"),
    ],
)
def test_an_arm_storage_profile_names_its_image(
    reference: dict[str, Any] | None, os_disk_image: dict[str, Any] | None, exact: bool, expected: Image | None
) -> None:
    assert Image.from_reference(reference, os_disk_image, exact=exact) == expected


def test_a_platform_patch_sets_the_urn_and_clears_every_gallery_reference() -> None:
    assert JAMMY.model_patch() == {
        "imageReference": {
            "publisher": "Canonical",
            "offer": "0001-com-ubuntu-server-jammy",
            "sku": "22_04-lts-gen2",
            "version": "22.04.202410020",
            "id": None,
            "sharedGalleryImageId": None,
            "communityGalleryImageId": None,
        }
    }


def test_a_gallery_patch_sets_the_id_and_clears_the_urn() -> None:
    assert SHARED.model_patch() == {
        "imageReference": {
            "publisher": None,
            "offer": None,
            "sku": None,
            "version": None,
            "id": None,
            "sharedGalleryImageId": SHARED.ref,
            "communityGalleryImageId": None,
        }
    }


def test_a_vhd_patch_names_only_the_os_disk_image() -> None:
    assert VHD.model_patch() == {"osDisk": {"image": {"uri": VHD.ref}}}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as ARM applies a PATCH body: null removes a field."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def storage_profile(image: Image) -> dict[str, Any]:
    profile = {"osDisk": {"osType": "Linux", "createOption": "FromImage", "caching": "ReadWrite"}}
    return merge_patch(profile, image.model_patch())


MANAGED_KINDS = [JAMMY, JAMMY.with_version("latest"), GALLERY, MANAGED, SHARED, COMMUNITY]


@pytest.mark.parametrize("before", MANAGED_KINDS, ids=lambda i: i.kind)
@pytest.mark.parametrize("after", MANAGED_KINDS, ids=lambda i: i.kind)
def test_patching_a_model_leaves_exactly_the_new_image_in_it(before: Image, after: Image) -> None:
    patched = merge_patch(storage_profile(before), after.model_patch())
    assert Image.from_reference(patched.get("imageReference"), patched["osDisk"].get("image")) == after
    assert patched["osDisk"]["caching"] == "ReadWrite"


def test_patching_a_vhd_model_onto_another_vhd_leaves_the_new_one() -> None:
    other = Image.of(ImageKind.URI, "https://account.blob.core.windows.net/vhds/v2.vhd")
    patched = merge_patch(storage_profile(VHD), other.model_patch())
    assert Image.from_reference(patched.get("imageReference"), patched["osDisk"].get("image")) == other


# -- where an image lives ------------------------------------------------------------------------------------

DEFINITION = Image.of(ImageKind.ID, GALLERY.ref.rsplit("/versions/", 1)[0])


@pytest.mark.parametrize(
    ("image", "follows"),
    [
        (JAMMY.with_version("latest"), True),
        (DEFINITION, True),
        (Image.of(ImageKind.ID, DEFINITION.ref + "/"), True),
        (JAMMY, False),
        (GALLERY, False),
        (MANAGED, False),
        (SHARED, False),
        (COMMUNITY, False),
        (VHD, False),
    ],
    ids=[
        "platform-latest",
        "definition",
        "definition-slash",
        "platform",
        "version",
        "managed",
        "shared",
        "community",
        "vhd",
    ],
)
def test_only_latest_and_a_gallery_definition_follow_a_source(image: Image, follows: bool) -> None:
    assert image.follows_source is follows


def test_a_gallery_definition_at_a_version_names_that_version_of_it() -> None:
    assert DEFINITION.with_version("1.4.0") == GALLERY
    assert JAMMY.with_version("latest").with_version("22.04.1") == JAMMY.with_version("22.04.1")


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (GALLERY, ("gallery", SUB, "rg-images", "g", "web", "1.4.0")),
        (DEFINITION, ("gallery", SUB, "rg-images", "g", "web", "")),
        (MANAGED, ("managed", SUB, "rg-images", "", "web-1.4.0", "")),
        (SHARED, ("shared", "", "", "abc-SHAREDGALLERY", "web", "1.4.0")),
        (COMMUNITY, ("community", "", "", "web-1a2b", "web", "1.4.0")),
    ],
    ids=["gallery-version", "gallery-definition", "managed", "shared", "community"],
)
def test_an_images_source_names_the_parts_the_compute_read_apis_take(image: Image, expected: tuple[str, ...]) -> None:
    source = image.source
    assert source is not None
    assert (source.form, source.subscription, source.group, source.gallery, source.image, source.version) == expected


@pytest.mark.parametrize(
    "image",
    [
        JAMMY,
        VHD,
        Image.of(ImageKind.ID, f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/disks/d"),
        Image.of(ImageKind.SHARED_GALLERY, "/CommunityGalleries/web-1a2b/Images/web/Versions/1.4.0"),
    ],
    ids=["platform", "vhd", "not-an-image-id", "community-id-as-shared"],
)
def test_an_image_of_no_known_source_has_none(image: Image) -> None:
    assert image.source is None
