"""The README's "`plan` against the simulator", run as written, for every manifest in examples/.

The simulator is started the way ``make simulator`` starts it (its recipe is read from the Makefile, shipped
scale-set file included), with two changes only: a port picked at run time instead of 8443 (``make simulator``
may be running) and the CA file in a temporary folder instead of the repository. Each example is then planned with
the README's own commands: its ``export`` lines (the simulator's URL and CA file put in for the documented ones)
and its ``scaleset-image plan -f`` line, from the repository's root, in an environment holding no other ``AZURE_*``
or ``SCALESET_IMAGE_*`` variable. Each example must plan, or be refused for the reason it says it would be.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from scaleset_image_operator.simulator import SimulatorControl

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
MAKEFILE = REPO / "Makefile"
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
SECTION = "### `plan` against the simulator"
REFUSED = {
    "gallery-image-version.yaml": "ImageChangeNotAllowed",
    "managed-image.yaml": "ImageChangeNotAllowed",
    "shared-gallery-image.yaml": "ImageChangeNotAllowed",
    "community-gallery-image.yaml": "ImageChangeNotAllowed",
}
"""The examples the shipped scale sets refuse: they name vmss-web, which runs a Marketplace image, and Azure does
not switch a model from a Marketplace image to a custom one in place. Every other example plans."""
EXIT_REFUSED = 3


def readme_section() -> str:
    text = README.read_text()
    start = text.index(f"\n{SECTION}\n")
    end = text.find("\n#", start + len(SECTION) + 2)
    return text[start:end]


def documented_commands() -> list[list[str]]:
    """The ``$ `` lines of the section's console blocks, as argv, ``$PWD`` read as the repository's root."""
    lines = [line[2:] for line in readme_section().splitlines() if line.startswith("$ ")]
    return [shlex.split(line.replace("$PWD", str(REPO))) for line in lines]


def documented_environment() -> dict[str, str]:
    exported = [argv[1:] for argv in documented_commands() if argv[0] == "export"]
    return dict(assignment.split("=", 1) for assignments in exported for assignment in assignments)


def documented_plan() -> list[str]:
    plans = [argv for argv in documented_commands() if argv[1:3] == ["plan", "-f"]]
    assert len(plans) == 1, f"the README section should show one plan command, not {plans}"
    return plans[0]


def make_simulator_arguments() -> list[str]:
    """The arguments ``make simulator`` passes to ``scaleset-image simulator``."""
    recipe = re.search(r"^simulator:.*\n\t(.+)$", MAKEFILE.read_text(), re.M)
    assert recipe, "no simulator target in the Makefile"
    words = shlex.split(recipe.group(1))
    return words[words.index("simulator") + 1 :]


def option(arguments: list[str], name: str) -> str:
    return arguments[arguments.index(name) + 1]


def replaced(arguments: list[str], name: str, value: str) -> list[str]:
    position = arguments.index(name) + 1
    return [*arguments[:position], value, *arguments[position + 1 :]]


def console_script() -> str:
    """``.venv/bin/scaleset-image`` of the environment running the tests."""
    return str(Path(sys.executable).parent / "scaleset-image")


@dataclass(frozen=True)
class Started:
    """The simulator as the tests started it, and what the README calls its URL and CA file."""

    url: str
    ca_file: Path
    documented_url: str
    documented_ca_file: str


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    documented = make_simulator_arguments()
    documented_url = f"https://127.0.0.1:{option(documented, '--port')}"
    documented_ca_file = str(REPO / option(documented, "--ca-file"))
    ca_file = tmp_path_factory.mktemp("make-simulator") / "sim-ca.pem"
    arguments = replaced(replaced(documented, "--port", "0"), "--ca-file", str(ca_file))
    process = subprocess.Popen(
        [console_script(), "simulator", *arguments],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        url = re.search(r"https://[^\s,()]+", first_line)
        assert url, f"no URL in {first_line!r} (exit code {process.poll()})"
        yield Started(url.group(0).rstrip("/"), ca_file, documented_url, documented_ca_file)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def plan_as_documented(simulator: Started, example: Path) -> subprocess.CompletedProcess[str]:
    """The README's exports and plan command, with the simulator's actual URL and CA file."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(("AZURE_", "SCALESET_IMAGE_"))
    }
    for name, value in documented_environment().items():
        environment[name] = value.replace(simulator.documented_url, simulator.url).replace(
            simulator.documented_ca_file, str(simulator.ca_file)
        )
    documented = documented_plan()
    assert Path(documented[0]).name == "scaleset-image", documented
    argv = [console_script(), *documented[1:-1], str(example.relative_to(REPO))]
    return subprocess.run(argv, cwd=REPO, env=environment, capture_output=True, text=True, timeout=120, check=False)


def test_the_readme_documents_every_variable_plan_needs_and_points_each_at_the_simulator_make_starts() -> None:
    environment = documented_environment()
    arguments = make_simulator_arguments()
    url = f"https://127.0.0.1:{option(arguments, '--port')}"

    assert set(environment) == {
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_AUTHORITY_HOST",
        "SCALESET_IMAGE_ARM_ENDPOINT",
        "SCALESET_IMAGE_CA_BUNDLE",
    }
    assert environment["AZURE_AUTHORITY_HOST"] == environment["SCALESET_IMAGE_ARM_ENDPOINT"] == url
    assert environment["SCALESET_IMAGE_CA_BUNDLE"] == str(REPO / option(arguments, "--ca-file"))
    assert "make simulator" in readme_section()


def scale_set_names(document: dict[str, object]) -> tuple[str, str, str]:
    return (str(document["subscriptionId"]), str(document["resourceGroup"]), str(document["name"]))


def test_the_shipped_file_holds_exactly_the_scale_sets_the_examples_name() -> None:
    shipped = yaml.safe_load((REPO / option(make_simulator_arguments(), "--scalesets")).read_text())
    named = {scale_set_names(yaml.safe_load(path.read_text())["spec"]["scaleSet"]) for path in EXAMPLES}

    assert {scale_set_names(entry) for entry in shipped["scalesets"]} == named


def test_most_examples_plan_and_each_refused_one_says_why_in_its_own_header_and_in_the_readme() -> None:
    assert set(REFUSED) <= {path.name for path in EXAMPLES}
    assert len(REFUSED) < len(EXAMPLES) / 2
    for name, reason in REFUSED.items():
        text = (REPO / "examples" / name).read_text()
        assert reason in text[: text.index("apiVersion:")], f"{name}'s header does not say it is refused: {reason}"
        assert f"`{name}`" in readme_section(), f"the README section does not name {name} as refused"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_the_documented_commands_plan_the_example_or_refuse_it_for_the_reason_it_expects(
    simulator: Started, example: Path
) -> None:
    control = SimulatorControl(simulator.url, simulator.ca_file)
    writes_before = control.stats()["writes"]

    result = plan_as_documented(simulator, example)

    output = result.stdout + result.stderr
    if example.name in REFUSED:
        assert result.returncode == EXIT_REFUSED, output
        assert f"refused: {REFUSED[example.name]}:" in output, output
    else:
        assert result.returncode == 0, output
        assert re.search(r"^verdict\s+Planned: dry run", result.stdout, re.M), output
        assert "nothing was changed" in result.stdout, output
    assert control.stats()["writes"] == writes_before, "plan wrote to Azure"
