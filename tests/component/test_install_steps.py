"""The image's install step, run for real: what ``docker build`` would put in /opt/venv, checked without Docker.

The module fixture reads the Dockerfile (with ``unit.test_dockerfile``'s reader), copies into a fresh folder the
files its builder stage COPYs, taken from the build context as ``.dockerignore`` leaves it, and runs the builder's
``RUN sh tools/docker/install.sh <WORKDIR> <venv>`` word for word, with only the two container paths mapped to temporary
folders. The environment is what the builder has: ``python3`` (the base tag's Python version) and ``uv`` on PATH, an
empty HOME and TMPDIR, plus the variables this machine needs to reach the package index (proxies, CA bundles, index
URLs). The install downloads the locked wheels from the index: 17-42 s measured on a busy 2-core machine.

The tests then use the venv the way the runtime stage does: its ENV (PATH, PYTHONDONTWRITEBYTECODE, ...) and its
ENTRYPOINT, as the image's user 65532:65532 when the tests run as root (else as the current, non-root, user).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scaleset_image_operator import __version__
from unit.test_dockerfile import IMAGE_USER, INSTALL_SCRIPT, REPO, Dockerfile, build_context

INSTALL_SECONDS = 240  # measured 17-42 s; the rest is room for a slow index or a busy machine
TEST_TIMEOUT_SECONDS = INSTALL_SECONDS + 60
RUNTIME_IMPORTS = (
    "kopf",
    "kubernetes",
    "azure.identity",
    "azure.mgmt.compute",
    "prometheus_client",
    "scaleset_image_operator.runner",
    "scaleset_image_operator.handlers",
)
# How this machine reaches the package index; a docker build would get the same through --build-arg or its config.
NETWORK_VARIABLES = re.compile(
    r"(?i:https?_proxy|no_proxy|all_proxy)|SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE"
    r"|PIP_(INDEX_URL|EXTRA_INDEX_URL|FIND_LINKS|CERT|CLIENT_CERT|TRUSTED_HOST|DEFAULT_TIMEOUT)"
    r"|UV_(INDEX|INDEX_URL|DEFAULT_INDEX|EXTRA_INDEX_URL|NATIVE_TLS|INSECURE_HOST|HTTP_TIMEOUT)"
)


@dataclass(frozen=True)
class Installed:
    """The venv the install step made, where the install ran (HOME, TMPDIR), and the image's runtime settings."""

    venv: Path
    home: Path
    tmpdir: Path
    seconds: float
    log: str
    runtime_env: dict[str, str]
    entrypoint: list[str]
    run_as: tuple[int, int] | None  # (uid, gid) of the image's user, or None: run as the current user

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Runs a command in the image's runtime environment (PATH first finds the venv), from /."""
        ids: dict[str, Any] = {}
        if self.run_as:
            ids = {"user": self.run_as[0], "group": self.run_as[1], "extra_groups": []}
        return subprocess.run(
            list(argv), env=self.runtime_env, cwd="/", capture_output=True, text=True, timeout=60, check=False, **ids
        )

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        return self.run("python", "-c", code)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, f"cannot read a name from {requirement!r}"
    return _canonical(match.group(0))


def _uv() -> str:
    """The uv binary this test run uses (``uv run`` names itself in $UV)."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        pytest.fail("uv is not on PATH and $UV is unset: run the tests with `python3 -m uv run --frozen pytest ...`")
    return uv


def _python(version: str) -> str:
    """A ``python<version>`` with pip, like the base image's python3: the system's if it has one, else this run's."""
    candidates = [shutil.which(f"python{version}", path="/usr/local/bin:/usr/bin:/bin")]
    candidates.append(str(Path(sys.base_prefix) / "bin" / f"python{version}"))
    for candidate in filter(None, candidates):
        if Path(candidate).exists():
            has_pip = subprocess.run(
                [candidate, "-m", "pip", "--version"], capture_output=True, timeout=30, check=False
            )
            if has_pip.returncode == 0:
                return candidate
    pytest.fail(f"no python{version} with pip found ({candidates}); the image's base has one")


def _usable_by_others(executable: Path) -> bool:
    """Whether a user other than its owner can run ``executable`` (every folder above it searchable)."""
    path = executable.resolve()
    folders_ok = all(folder.stat().st_mode & stat.S_IXOTH for folder in path.parents)
    return folders_ok and bool(path.stat().st_mode & stat.S_IXOTH)


def _place(context: list[str], source: str, destination: Path, into_folder: bool) -> None:
    """Docker's COPY of one source from the build context (a file, or a folder's contents)."""
    source = source.rstrip("/")
    if source in context:
        target = destination / Path(source).name if into_folder else destination
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / source, target)
        return
    inside = [path for path in context if path.startswith(source + "/")]
    assert inside, f"COPY {source}: nothing of it is in the build context (.dockerignore leaves it out?)"
    for path in inside:
        target = destination / path[len(source) + 1 :]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / path, target)


def _readable_by_all(path: Path) -> bool:
    """Files readable, folders readable and searchable, by users other than the owner (symbolic links: their target)."""
    if path.is_symlink():
        return True
    mode = path.stat().st_mode
    needed = stat.S_IROTH | stat.S_IXOTH if path.is_dir() else stat.S_IROTH
    return mode & needed == needed


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(folder)): (path.lstat().st_size, path.lstat().st_mtime_ns) for path in folder.rglob("*")
    }


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    dockerfile = Dockerfile.read()
    builder, words = dockerfile.install_run()
    _, venv_in_image, _ = dockerfile.venv_copy()
    workdir = builder.workdir()
    base_version = re.search(r"python:(\d+\.\d+)-", builder.base)
    assert base_version, f"cannot read the Python version from the base {builder.base!r}"

    root = Path(tempfile.mkdtemp(prefix="install-steps-"))
    try:
        root.chmod(0o755)  # the image's user must be able to reach the venv, as in the image
        source, venv, home, tmpdir, shims, runtime_home = (
            root / name for name in ("src", "venv", "home", "tmp", "bin", "runtime-home")
        )
        for folder in (source, home, tmpdir, shims, runtime_home):
            folder.mkdir()
        places = {workdir: source, venv_in_image: venv}

        def host_path(container_path: str) -> Path:
            for inside, outside in places.items():
                if container_path == inside or container_path.startswith(inside.rstrip("/") + "/"):
                    return outside / container_path[len(inside) :].lstrip("/")
            raise AssertionError(f"the builder uses {container_path}, which the test does not map to a folder")

        context = build_context()
        for copy in builder.all("COPY"):
            assert "from" not in copy.flags, f"line {copy.line}: the builder copies from another stage"
            *sources, destination = copy.words()
            target = host_path(destination if destination.startswith("/") else f"{workdir}/{destination}")
            for item in sources:
                _place(context, item, target, into_folder=destination.endswith("/") or len(sources) > 1)

        python = _python(base_version.group(1))
        (shims / "python3").symlink_to(python)
        (shims / "uv").symlink_to(_uv())
        env = {name: value for name, value in os.environ.items() if NETWORK_VARIABLES.fullmatch(name)}
        env |= {"PATH": f"{shims}:/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(tmpdir), "LC_ALL": "C.UTF-8"}
        argv = [str(host_path(word)) if word.startswith("/") else word for word in words]

        started = time.monotonic()
        try:
            result = subprocess.run(
                argv, cwd=source, env=env, capture_output=True, text=True, timeout=INSTALL_SECONDS, check=False
            )
        except subprocess.TimeoutExpired as error:
            output = error.stderr.decode() if isinstance(error.stderr, bytes) else error.stderr
            pytest.fail(f"{' '.join(argv)} took more than {INSTALL_SECONDS} s:\n{output}")
        seconds = time.monotonic() - started
        log = result.stdout + result.stderr
        assert result.returncode == 0, f"{' '.join(argv)} failed (exit {result.returncode}):\n{log[-6000:]}"
        print(f"install step: {' '.join(argv)} took {seconds:.1f} s (python {python})")

        runtime_env = {
            name: value.replace("$PATH", "/usr/bin:/bin").replace(venv_in_image, str(venv))
            for name, value in dockerfile.final.env().items()
        }
        assert "HOME" in runtime_env, "the runtime stage should set HOME (user 65532 has no passwd entry)"
        runtime_env["HOME"] = str(runtime_home)
        entrypoint = dockerfile.final.last("ENTRYPOINT")
        assert entrypoint and entrypoint.exec_form(), "the runtime stage has no exec-form ENTRYPOINT"
        uid, gid = (int(part) for part in IMAGE_USER.split(":"))
        as_image_user = os.geteuid() == 0 and _usable_by_others(venv / "bin" / "python")
        yield Installed(
            venv=venv,
            home=home,
            tmpdir=tmpdir,
            seconds=seconds,
            log=log,
            runtime_env=runtime_env,
            entrypoint=entrypoint.exec_form() or [],
            run_as=(uid, gid) if as_image_user else None,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- The script's own checks (fast: they stop before any download) ----------------------------------------------


def _install_script(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    return subprocess.run(
        ["sh", str(INSTALL_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_install_sh_without_arguments_says_how_to_call_it(tmp_path: Path) -> None:
    result = _install_script(tmp_path=tmp_path)
    assert result.returncode == 2
    assert "usage:" in result.stderr and "SOURCE_DIR VENV_DIR" in result.stderr


def test_install_sh_refuses_a_folder_that_is_not_the_project(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'other'\n")
    result = _install_script(str(tmp_path), str(tmp_path / "venv"), tmp_path=tmp_path)
    assert result.returncode == 2
    assert f"{tmp_path} has no uv.lock" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_install_sh_never_installs_over_an_existing_folder(tmp_path: Path) -> None:
    target = tmp_path / "venv"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    result = _install_script(str(REPO), str(target), tmp_path=tmp_path)
    assert result.returncode == 2
    assert "exists and is not empty" in result.stderr
    assert [path.name for path in target.iterdir()] == ["keep.txt"]


# --- What the install step produced -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(TEST_TIMEOUT_SECONDS)
def test_the_install_leaves_no_cache_and_no_temporary_files(installed: Installed) -> None:
    assert not list(installed.home.iterdir()), f"left in HOME: {sorted(installed.home.rglob('*'))[:10]}"
    assert not list(installed.tmpdir.iterdir()), f"left in TMPDIR: {sorted(installed.tmpdir.rglob('*'))[:10]}"
    assert "--require-hashes" in INSTALL_SCRIPT.read_text()
    assert "No broken requirements found." in installed.log


@pytest.mark.slow
@pytest.mark.timeout(TEST_TIMEOUT_SECONDS)
def test_the_entrypoint_reports_this_version(installed: Installed) -> None:
    result = installed.run(*installed.entrypoint, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"scaleset-image {__version__}"


@pytest.mark.slow
@pytest.mark.timeout(TEST_TIMEOUT_SECONDS)
def test_the_entrypoint_help_lists_run_plan_and_simulator(installed: Installed) -> None:
    result = installed.run(*installed.entrypoint, "--help")
    assert result.returncode == 0, result.stderr
    listed = set(re.findall(r"^\s{4}(\w+)\s", result.stdout, re.MULTILINE))
    assert {"run", "plan", "simulator"} <= listed, f"sub-commands listed: {sorted(listed)}\n{result.stdout}"


@pytest.mark.slow
@pytest.mark.timeout(TEST_TIMEOUT_SECONDS)
def test_the_operator_runtime_imports_in_the_venv(installed: Installed) -> None:
    result = installed.python(f"import {', '.join(RUNTIME_IMPORTS)}; import sys; print(sys.prefix)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(installed.venv), "python on the runtime PATH is not the venv's"


@pytest.mark.slow
@pytest.mark.timeout(TEST_TIMEOUT_SECONDS)
def test_the_venv_holds_the_locked_runtime_distributions_and_nothing_for_development(installed: Installed) -> None:
    result = installed.python(
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    assert result.returncode == 0, result.stderr
    installed_versions = {_canonical(name): version for name, version in json.loads(result.stdout).items()}

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    project_name = _canonical(project["project"]["name"])
    assert installed_versions.pop(project_name, None) == __version__

    lock = tomllib.loads((REPO / "uv.lock").read_text())
    locked: dict[str, set[str]] = {}
    packages: dict[str, list[dict[str, Any]]] = {}
    for package in lock["package"]:
        locked.setdefault(package["name"], set()).add(package.get("version", ""))
        packages.setdefault(package["name"], []).append(package)
    runtime: set[str] = set()
    pending = [
        (dependency["name"], tuple(dependency.get("extra", ())))
        for dependency in packages[project_name][0]["dependencies"]
    ]
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while pending:
        name, extras = pending.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        runtime.add(name)
        for package in packages[name]:
            requirements = list(package.get("dependencies", []))
            for extra in extras:
                requirements += package.get("optional-dependencies", {}).get(extra, [])
            pending += [(requirement["name"], tuple(requirement.get("extra", ()))) for requirement in requirements]

    not_runtime = sorted(set(installed_versions) - runtime)
    assert not not_runtime, f"installed but not a runtime dependency in uv.lock: {not_runtime}"
    unlocked = {name: version for name, version in installed_versions.items() if version not in locked[name]}
    assert not unlocked, f"installed at versions uv.lock does not pin: {unlocked}"
    direct = {_requirement_name(requirement) for requirement in project["project"]["dependencies"]}
    assert direct <= set(installed_versions), (
        f"runtime dependencies missing: {sorted(direct - set(installed_versions))}"
    )
    development = {_requirement_name(requirement) for requirement in project["dependency-groups"]["dev"]}
    development |= {"pytest", "ruff", "mypy", "pip", "setuptools"}
    assert not development & set(installed_versions), (
        f"in the runtime venv: {sorted(development & set(installed_versions))}"
    )


@pytest.mark.slow
@pytest.mark.timeout(TEST_TIMEOUT_SECONDS)
def test_the_venv_is_readable_by_the_image_user_and_running_it_writes_nothing(installed: Installed) -> None:
    unreadable = [
        str(path.relative_to(installed.venv)) for path in installed.venv.rglob("*") if not _readable_by_all(path)
    ]
    assert not unreadable, f"not readable by user 65532 in the image: {unreadable[:10]}"
    cache_tag = installed.python("import sys; print(sys.implementation.cache_tag)").stdout.strip()
    package = next(installed.venv.glob("lib/python*/site-packages/scaleset_image_operator"))
    uncompiled = [
        str(module.relative_to(package))
        for module in package.rglob("*.py")
        if not (module.parent / "__pycache__" / f"{module.stem}.{cache_tag}.pyc").exists()
    ]
    assert not uncompiled, f"not compiled at build time (would be compiled on every start): {uncompiled[:10]}"

    before = _snapshot(installed.venv)
    for argv in ([*installed.entrypoint, "--help"], ["python", "-c", f"import {', '.join(RUNTIME_IMPORTS)}"]):
        result = installed.run(*argv)
        assert result.returncode == 0, f"{argv}: {result.stderr}"
    after = _snapshot(installed.venv)
    changed = sorted(
        set(after) ^ set(before) | {path for path in after if path in before and after[path] != before[path]}
    )
    assert not changed, f"running from the venv wrote into it: {changed[:10]}"
    home = Path(installed.runtime_env["HOME"])
    assert not list(home.iterdir()), f"running wrote into HOME: {sorted(home.rglob('*'))}"
    print(f"ran as {'uid/gid ' + IMAGE_USER if installed.run_as else f'the current user ({os.geteuid()})'}")
