"""The ``scaleset-image`` command given bad input or a broken environment, as a person meets it: one line on stderr
naming the file, field or setting, exit code 2 for a person's input and 1 for the environment, never a traceback.

In-process (``cli.main`` with capsys) where the command stops before it touches anything; a real process of the
installed console script where the environment matters (kubeconfig, credentials) or where the command would serve
if it wrongly started (the simulator).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from component.simkit import CLIENT_ID, RESOURCE_GROUP, TENANT_ID
from scaleset_image_operator import cli
from scaleset_image_operator.simulator import SimulatorControl, SimulatorError, SimulatorThread

TIMEOUT = 90


def scaleset_image() -> str:
    """The console script installed next to the interpreter running the tests."""
    return str(Path(sys.executable).parent / "scaleset-image")


def command(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [scaleset_image(), *args],
        env=env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """``cli.main(argv)``: its exit code and stderr, as the interpreter would make them of a ``SystemExit``."""
    try:
        code: Any = cli.main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    if isinstance(code, str):  # the interpreter prints the message and exits 1
        return 1, err + code + "\n"
    return int(code or 0), err


def one_line(stderr: str) -> str:
    """The single line a failed command printed; fails on a traceback or on more than one line."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    return lines[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without anything that configures Kubernetes, Azure or the operator, with a
    home of its own (no ~/.kube/config, no Azure CLI login) and PATH holding only this interpreter's folder (no
    az, azd or pwsh to find)."""
    kept = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KUBE", "AZURE_", "SCALESET_IMAGE_", "IDENTITY_", "MSI_", "IMDS_"))
    }
    return kept | {"HOME": str(home), "PATH": str(Path(sys.executable).parent)} | extra


# --- plan and reconcile: the manifest ----------------------------------------------------------------------------

NOT_YAML = "apiVersion: scaleset.dev/v1alpha1\nkind: ScaleSetImage\nspec:\n  scaleSet: {name: web\n  image: [\n"


def unreadable_manifests(folder: Path) -> dict[str, tuple[Path, str]]:
    """name: (the -f argument, what the one line must say after the file's name)."""
    (folder / "a-folder").mkdir()
    (folder / "not-yaml.yaml").write_text("kind: ScaleSetImage\nspec:\n  a: b\n    c: d\n")
    (folder / "latin-1.yaml").write_bytes("kind: ScaleSetImage\nmetadata: {name: caf\xe9}\n".encode("latin-1"))
    (folder / "no-ssi.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n")
    return {
        "missing": (folder / "missing.yaml", ": no such file"),
        "folder": (folder / "a-folder", ": is a folder, not a file"),
        "not-yaml": (
            folder / "not-yaml.yaml",
            ": not valid YAML: line 4, column 6: mapping values are not allowed here",
        ),
        "not-utf-8": (folder / "latin-1.yaml", ": not UTF-8 text (byte 0xe9 at offset 40)"),
        "no-scalesetimage": (folder / "no-ssi.yaml", ": expected exactly one ScaleSetImage document, found 0"),
    }


@pytest.mark.parametrize("case", ["missing", "folder", "not-yaml", "not-utf-8", "no-scalesetimage"])
@pytest.mark.parametrize("subcommand", ["plan", "reconcile"])
def test_a_manifest_that_cannot_be_read_is_named_in_one_line_and_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, subcommand: str, case: str
) -> None:
    path, says = unreadable_manifests(tmp_path)[case]

    code, err = in_process(capsys, subcommand, "-f", str(path))

    assert code == 2, err
    line = one_line(err)
    assert f"{path}{says}" in line, line


def test_a_manifest_on_stdin_that_is_not_yaml_is_named_stdin() -> None:
    result = command("plan", "-f", "-", stdin=NOT_YAML)

    assert result.returncode == 2, result.stderr
    assert "stdin: not valid YAML: line 5, column 8: expected ',' or '}', but got ':'" in one_line(result.stderr)


def test_a_missing_manifest_is_one_line_from_the_installed_command_too(tmp_path: Path) -> None:
    result = command("reconcile", "-f", str(tmp_path / "ssi.yaml"))

    assert result.returncode == 2, result.stderr
    assert one_line(result.stderr).endswith(f"{tmp_path / 'ssi.yaml'}: no such file")


# --- plan: the estimate ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--upgrade-minutes", "-1"),
        ("--upgrade-minutes", "0"),
        ("--upgrade-minutes", "nan"),
        ("--upgrade-minutes", "inf"),
        ("--health-minutes", "-0.5"),
    ],
)
def test_an_estimate_of_no_negative_or_endless_minutes_is_an_argument_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, flag: str, value: str
) -> None:
    code, err = in_process(capsys, "plan", "-f", str(tmp_path / "ssi.yaml"), f"{flag}={value}")

    assert code == 2, err
    assert "Traceback" not in err
    assert f"error: argument {flag}: " in err.splitlines()[-1] and repr(value) in err.splitlines()[-1], err


def test_a_demo_of_fewer_instances_than_update_domains_is_an_argument_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = in_process(capsys, "demo", "--plain", "--instances", "1")

    assert code == 2, err
    assert "Traceback" not in err
    assert "--instances must be at least 5" in err.splitlines()[-1], err


# --- run: the Kubernetes configuration -----------------------------------------------------------------------------


def run_operator(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return command("run", "--health-port", str(free_port()), *args, env=env)


def test_run_outside_a_cluster_without_a_kubeconfig_says_how_to_give_one_and_exits_1(tmp_path: Path) -> None:
    result = run_operator(clean_env(tmp_path))

    assert result.returncode == 1, result.stderr
    assert one_line(result.stderr).endswith(
        "no Kubernetes configuration: set KUBECONFIG, pass --kubeconfig, or run in a cluster"
    )


def test_run_with_a_kubeconfig_flag_that_names_no_file_names_it_and_exits_1(tmp_path: Path) -> None:
    missing = tmp_path / "kube" / "config"

    result = run_operator(clean_env(tmp_path), "--kubeconfig", str(missing))

    assert result.returncode == 1, result.stderr
    assert one_line(result.stderr).endswith(f"--kubeconfig {missing}: no such file")


def test_run_with_kubeconfig_naming_no_file_names_the_variable_and_exits_1(tmp_path: Path) -> None:
    missing = f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}"

    result = run_operator(clean_env(tmp_path, KUBECONFIG=missing))

    assert result.returncode == 1, result.stderr
    assert one_line(result.stderr).endswith(f"KUBECONFIG={missing}: no such file")


@pytest.mark.parametrize("content", ["hello\n", "- a\n- b\n", "apiVersion: v1\nkind: Config\nclusters: []\n"])
def test_run_with_a_file_that_is_no_kubeconfig_names_it_and_exits_1(tmp_path: Path, content: str) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(content)

    result = run_operator(clean_env(tmp_path), "--kubeconfig", str(kubeconfig))

    assert result.returncode == 1, result.stderr
    assert f"--kubeconfig {kubeconfig}: not a usable kubeconfig: " in one_line(result.stderr)


# --- the simulator ---------------------------------------------------------------------------------------------------


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


def test_the_simulator_on_a_port_in_use_says_so_and_writes_no_ca_file(listening: int, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"

    result = command("simulator", "--port", str(listening), "--ca-file", str(ca_file))

    assert result.returncode == 1, result.stderr
    assert one_line(result.stderr) == f"simulator: port {listening} on 127.0.0.1 is in use"
    assert not ca_file.exists(), "a CA file was written for a simulator that never listened"


def test_a_ca_file_in_a_folder_that_does_not_exist_is_named_and_no_folder_is_made(tmp_path: Path) -> None:
    ca_file = tmp_path / "typo" / "ca.pem"

    result = command("simulator", "--port", "0", "--ca-file", str(ca_file))

    assert result.returncode == 2, result.stderr
    assert one_line(result.stderr) == f"simulator: --ca-file {ca_file}: no such folder {ca_file.parent}"
    assert not ca_file.parent.exists()


SCALE_SET = f"subscriptionId: 00000000-0000-0000-0000-00000000e220, resourceGroup: {RESOURCE_GROUP}, name: web"

BAD_SCALESETS = {
    "not-yaml": ("scalesets:\n  - {name: web\n", ": not valid YAML: line 3, column 1: "),
    "capacity-lots": (f"scalesets:\n  - {{{SCALE_SET}, capacity: lots}}\n", ": scalesets[0]: 'capacity' must be"),
    "zones-a-string": (f"- {{{SCALE_SET}, zones: '1'}}\n", ": scalesets[0]: 'zones' must be a list"),
    "health-a-string": (f"- {{{SCALE_SET}, healthExtension: 'no'}}\n", ": scalesets[0]: 'healthExtension' must be"),
    "image-version-a-number": (
        f"- {{{SCALE_SET}, image: {{publisher: P, offer: O, sku: S, version: 1.0}}}}\n",
        ": scalesets[0]: 'image.version' must be a string",
    ),
    "versions-numbers": (
        "images:\n  - {publisher: P, offer: O, sku: S, versions: [1.0, 1.1]}\n",
        ": images[0]: 'versions' must be a list of strings",
    ),
    "an-entry-that-is-a-name": ("scalesets:\n  - web\n", ": scalesets[0] must be a mapping of fields, not a string"),
    "scalesets-not-a-list": ("scalesets: web\n", ": 'scalesets' must be a list, not a string"),
    "a-misspelt-key": ("scalesett:\n  - {name: web}\n", ": unknown key 'scalesett': expected 'scalesets' and 'images'"),
}


@pytest.mark.parametrize("case", sorted(BAD_SCALESETS))
def test_a_scalesets_file_with_a_bad_field_names_the_file_and_the_field_and_exits_2(tmp_path: Path, case: str) -> None:
    content, says = BAD_SCALESETS[case]
    scalesets = tmp_path / "scalesets.yaml"
    scalesets.write_text(content)
    ca_file = tmp_path / "ca.pem"

    result = command("simulator", "--port", "0", "--ca-file", str(ca_file), "--scalesets", str(scalesets))

    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert line.startswith(f"simulator: {scalesets}{says}"), line
    assert not ca_file.exists()


@pytest.mark.parametrize("case", ["missing", "folder", "not-utf-8"])
def test_a_scalesets_file_that_cannot_be_read_is_named_and_exits_2(tmp_path: Path, case: str) -> None:
    path = {"missing": tmp_path / "nope.yaml", "folder": tmp_path, "not-utf-8": tmp_path / "latin-1.yaml"}[case]
    (tmp_path / "latin-1.yaml").write_bytes(b"- {name: caf\xe9}\n")
    says = {"missing": "no such file", "folder": "is a folder, not a file", "not-utf-8": "not UTF-8 text"}[case]

    result = command("simulator", "--port", "0", "--ca-file", str(tmp_path / "ca.pem"), "--scalesets", str(path))

    assert result.returncode == 2, result.stderr
    assert one_line(result.stderr).startswith(f"simulator: {path}: {says}")


def test_the_control_api_answers_a_field_of_the_wrong_type_with_400_naming_it(
    control: SimulatorControl, subscription_id: str
) -> None:
    with pytest.raises(SimulatorError) as refused:
        control.create_scale_set(subscriptionId=subscription_id, resourceGroup=RESOURCE_GROUP, name="web", capacity="3")

    assert refused.value.status == 400
    assert refused.value.body["error"]["target"] == "capacity"


# --- credentials ---------------------------------------------------------------------------------------------------


@pytest.fixture
def manifest(tmp_path: Path, subscription_id: str) -> Path:
    path = tmp_path / "ssi.yaml"
    document = {
        "apiVersion": "scaleset.dev/v1alpha1",
        "kind": "ScaleSetImage",
        "metadata": {"name": "web"},
        "spec": {
            "scaleSet": {"subscriptionId": subscription_id, "resourceGroup": RESOURCE_GROUP, "name": "web"},
            "image": {
                "platform": {
                    "publisher": "Canonical",
                    "offer": "0001-com-ubuntu-server-jammy",
                    "sku": "22_04-lts-gen2",
                    "version": "latest",
                }
            },
        },
    }
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def plan(simulator: SimulatorThread, manifest: Path, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``scaleset-image plan`` against the simulator as ARM, with only the given Azure settings."""

    def run(**settings: str) -> subprocess.CompletedProcess[str]:
        env = clean_env(tmp_path, SCALESET_IMAGE_ARM_ENDPOINT=simulator.url, **settings)
        return command("plan", "-f", str(manifest), env=env)

    return run


def test_plan_without_any_credential_says_none_was_found_and_which_were_tried(
    plan: Callable[..., subprocess.CompletedProcess[str]], simulator: SimulatorThread
) -> None:
    result = plan(SCALESET_IMAGE_CA_BUNDLE=str(simulator.ca_file))

    assert result.returncode == 1, result.stderr
    line = one_line(result.stderr)
    assert "AuthFailed" in line and "no credentials were found (tried: environment, workload identity, " in line
    assert "refused" not in line, line


def test_plan_against_a_token_endpoint_it_does_not_trust_says_to_set_the_ca_bundle(
    plan: Callable[..., subprocess.CompletedProcess[str]], simulator: SimulatorThread
) -> None:
    result = plan(
        AZURE_TENANT_ID=TENANT_ID,
        AZURE_CLIENT_ID=CLIENT_ID,
        AZURE_CLIENT_SECRET="s3cret",
        AZURE_AUTHORITY_HOST=simulator.url,
    )

    assert result.returncode == 1, result.stderr
    line = one_line(result.stderr)
    assert "AuthFailed" in line and "TLS: the server's certificate is not trusted; set SCALESET_IMAGE_CA_BUNDLE" in line
    assert "refused" not in line, line


def test_plan_whose_credentials_the_token_endpoint_refuses_says_azure_refused_them(
    plan: Callable[..., subprocess.CompletedProcess[str]], simulator: SimulatorThread, tmp_path: Path
) -> None:
    """An empty federated token: Entra (and the simulator) answer 401 invalid_client, AADSTS7000216."""
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text("")

    result = plan(
        SCALESET_IMAGE_CA_BUNDLE=str(simulator.ca_file),
        AZURE_TENANT_ID=TENANT_ID,
        AZURE_CLIENT_ID=CLIENT_ID,
        AZURE_FEDERATED_TOKEN_FILE=str(token_file),
        AZURE_AUTHORITY_HOST=simulator.url,
    )

    assert result.returncode == 1, result.stderr
    line = one_line(result.stderr)
    assert "AuthFailed" in line and "Azure refused the credentials: WorkloadIdentityCredential: " in line, line
    assert "AADSTS7000216" in line and "requesting a new token" not in line, line
