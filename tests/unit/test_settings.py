"""Settings: one typed object read from the environment (passed in, never ``os.environ``), then flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scaleset_image_operator.settings import PUBLIC_ARM_ENDPOINT, Settings, SettingsError, from_env

SIMULATOR = "https://127.0.0.1:8443"


def test_no_environment_gives_the_documented_defaults() -> None:
    settings = from_env({})
    assert settings == Settings()
    assert (settings.arm_endpoint, settings.arm_scope) == (PUBLIC_ARM_ENDPOINT, "https://management.azure.com/.default")
    assert (settings.poll_seconds, settings.steady_seconds, settings.retry_after_cap, settings.max_requeue) == (
        10.0,
        600.0,
        30.0,
        900.0,
    )
    assert (settings.budget_share, settings.image_cache_seconds, settings.metrics_port) == (0.5, 300.0, 8080)
    assert (settings.ca_bundle, settings.namespaces, settings.label_selector) == (None, (), "")
    assert settings.connection_verify is True


@pytest.mark.parametrize(
    ("variable", "raw", "field", "value"),
    [
        ("SCALESET_IMAGE_ARM_ENDPOINT", SIMULATOR, "arm_endpoint", SIMULATOR),
        ("SCALESET_IMAGE_ARM_SCOPE", "https://management.usgovcloudapi.net/.default", "arm_scope", None),
        ("SCALESET_IMAGE_POLL_SECONDS", "2.5", "poll_seconds", 2.5),
        ("SCALESET_IMAGE_STEADY_SECONDS", "60", "steady_seconds", 60.0),
        ("SCALESET_IMAGE_RETRY_AFTER_CAP", "5", "retry_after_cap", 5.0),
        ("SCALESET_IMAGE_MAX_REQUEUE", "120", "max_requeue", 120.0),
        ("SCALESET_IMAGE_BUDGET_SHARE", "0.25", "budget_share", 0.25),
        ("SCALESET_IMAGE_IMAGE_CACHE_SECONDS", "0", "image_cache_seconds", 0.0),
        ("SCALESET_IMAGE_METRICS_PORT", "9090", "metrics_port", 9090),
        ("SCALESET_IMAGE_NAMESPACES", "web", "namespaces", ("web",)),
        ("SCALESET_IMAGE_NAMESPACES", " web, ,batch ,", "namespaces", ("web", "batch")),
        ("SCALESET_IMAGE_LABEL_SELECTOR", "shard in (a,b)", "label_selector", "shard in (a,b)"),
    ],
)
def test_each_variable_sets_its_field(variable: str, raw: str, field: str, value: Any) -> None:
    assert getattr(from_env({variable: raw}), field) == (raw if value is None else value)


def test_an_empty_variable_is_as_good_as_unset() -> None:
    assert from_env({"SCALESET_IMAGE_POLL_SECONDS": "", "SCALESET_IMAGE_ARM_ENDPOINT": ""}) == Settings()


def test_variables_of_other_programs_are_ignored() -> None:
    assert from_env({"AZURE_CLIENT_ID": "x", "SCALESET_IMAGE_UNKNOWN": "y"}) == Settings()


def test_flags_win_over_the_environment_and_unset_flags_do_not() -> None:
    settings = from_env(
        {"SCALESET_IMAGE_POLL_SECONDS": "2", "SCALESET_IMAGE_METRICS_PORT": "9090"}, poll_seconds=7.0, metrics_port=None
    )
    assert (settings.poll_seconds, settings.metrics_port) == (7.0, 9090)


# -- endpoints and CA ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "flags"),
    [
        ({"SCALESET_IMAGE_ARM_ENDPOINT": "http://127.0.0.1:8080"}, {}),
        ({}, {"arm_endpoint": "http://127.0.0.1:8080"}),
        ({"SCALESET_IMAGE_ARM_ENDPOINT": "HTTP://127.0.0.1:8080"}, {}),
    ],
)
def test_a_plain_http_endpoint_is_refused_saying_https_is_required(
    environ: dict[str, str], flags: dict[str, Any]
) -> None:
    # azure-core sends a bearer token over TLS only: no setting can make a plain-http endpoint work.
    with pytest.raises(SettingsError) as caught:
        from_env(environ, **flags)
    message = str(caught.value)
    assert message.startswith("SCALESET_IMAGE_ARM_ENDPOINT '") and "' is plain http: https is required" in message
    assert "ALLOW" not in message.upper(), "no opt-in is offered: none exists"


@pytest.mark.parametrize(
    "endpoint", ["management.azure.com", "ftp://management.azure.com", "https://", "https:///path", "//host", "x"]
)
def test_an_endpoint_that_is_no_url_is_refused(endpoint: str) -> None:
    with pytest.raises(SettingsError, match="SCALESET_IMAGE_ARM_ENDPOINT must be an https:// URL"):
        from_env({"SCALESET_IMAGE_ARM_ENDPOINT": endpoint})


def test_a_ca_bundle_that_exists_is_what_connections_verify_against(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = from_env({"SCALESET_IMAGE_CA_BUNDLE": str(bundle)})
    assert (settings.ca_bundle, settings.connection_verify) == (bundle, str(bundle))


@pytest.mark.parametrize("name", ["missing.pem", "."])
def test_a_ca_bundle_that_is_not_a_file_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(SettingsError, match="SCALESET_IMAGE_CA_BUNDLE: no such file"):
        from_env({"SCALESET_IMAGE_CA_BUNDLE": str(tmp_path / name)})


# -- bad values ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("SCALESET_IMAGE_POLL_SECONDS", "ten"),
        ("SCALESET_IMAGE_POLL_SECONDS", "10s"),
        ("SCALESET_IMAGE_STEADY_SECONDS", "5m"),
        ("SCALESET_IMAGE_RETRY_AFTER_CAP", "30,5"),
        ("SCALESET_IMAGE_MAX_REQUEUE", "-"),
        ("SCALESET_IMAGE_BUDGET_SHARE", "lots"),
        ("SCALESET_IMAGE_IMAGE_CACHE_SECONDS", "1h"),
        ("SCALESET_IMAGE_METRICS_PORT", "80.5"),
        ("SCALESET_IMAGE_METRICS_PORT", "http"),
    ],
)
def test_a_malformed_value_is_refused_naming_the_variable_and_the_value(variable: str, raw: str) -> None:
    with pytest.raises(SettingsError) as caught:
        from_env({variable: raw})
    assert variable in str(caught.value)
    assert repr(raw) in str(caught.value)


def test_a_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


@pytest.mark.parametrize(
    "variable",
    [
        "SCALESET_IMAGE_POLL_SECONDS",
        "SCALESET_IMAGE_STEADY_SECONDS",
        "SCALESET_IMAGE_RETRY_AFTER_CAP",
        "SCALESET_IMAGE_MAX_REQUEUE",
        "SCALESET_IMAGE_BUDGET_SHARE",
    ],
)
@pytest.mark.parametrize("raw", ["0", "-1"])
def test_a_delay_or_budget_that_is_not_positive_is_refused(variable: str, raw: str) -> None:
    with pytest.raises(SettingsError):
        from_env({variable: raw})


@pytest.mark.parametrize(
    "variable",
    [
        "SCALESET_IMAGE_POLL_SECONDS",
        "SCALESET_IMAGE_STEADY_SECONDS",
        "SCALESET_IMAGE_RETRY_AFTER_CAP",
        "SCALESET_IMAGE_MAX_REQUEUE",
        "SCALESET_IMAGE_BUDGET_SHARE",
    ],
)
def test_a_value_that_is_not_positive_is_refused_naming_the_variable(variable: str) -> None:
    # SettingsError promises a message naming the variable; a person sets SCALESET_IMAGE_*, not poll_seconds.
    with pytest.raises(SettingsError, match=variable):
        from_env({variable: "0"})


@pytest.mark.parametrize(
    "variable",
    ["SCALESET_IMAGE_POLL_SECONDS", "SCALESET_IMAGE_STEADY_SECONDS", "SCALESET_IMAGE_MAX_REQUEUE"],
)
def test_not_a_number_is_refused_as_a_delay(variable: str) -> None:
    # float("nan") parses, and nan <= 0 is False: without a check of its own it slips through to kopf's timers.
    with pytest.raises(SettingsError, match=variable):
        from_env({variable: "nan"})


def test_settings_built_in_code_are_checked_like_those_from_the_environment() -> None:
    with pytest.raises(SettingsError):
        Settings(arm_endpoint="http://localhost")
    with pytest.raises(SettingsError):
        Settings(poll_seconds=0)


# -- the Azure timeout -----------------------------------------------------------------------------------------


def test_an_azure_call_may_take_a_minute_unless_told_otherwise() -> None:
    assert Settings().azure_timeout_seconds == 60.0
    assert from_env({"SCALESET_IMAGE_AZURE_TIMEOUT": "90"}).azure_timeout_seconds == 90.0
    shorter = {"SCALESET_IMAGE_AZURE_TIMEOUT": "3", "SCALESET_IMAGE_RETRY_AFTER_CAP": "2"}
    assert from_env(shorter).azure_timeout_seconds == 3.0


@pytest.mark.parametrize("raw", ["30", "5", "0", "-1", "nan", "inf"])
def test_an_azure_timeout_no_longer_than_the_retry_after_cap_is_refused_naming_both_variables(raw: str) -> None:
    # A call waits up to the cap for a throttled request: a shorter timeout would end every such wait as a timeout.
    with pytest.raises(SettingsError) as caught:
        from_env({"SCALESET_IMAGE_AZURE_TIMEOUT": raw})
    message = str(caught.value)
    assert message.startswith("SCALESET_IMAGE_AZURE_TIMEOUT must be a number of seconds longer than ")
    assert "SCALESET_IMAGE_RETRY_AFTER_CAP (30)" in message
    assert "\n" not in message


@pytest.mark.parametrize("raw", ["1m", "60s", "soon"])
def test_an_azure_timeout_that_is_no_number_is_refused_naming_the_variable_and_the_value(raw: str) -> None:
    with pytest.raises(SettingsError, match=f"SCALESET_IMAGE_AZURE_TIMEOUT={raw!r} is not a valid float"):
        from_env({"SCALESET_IMAGE_AZURE_TIMEOUT": raw})
