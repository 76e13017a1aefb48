"""``make demo`` works from a fresh checkout on an externally managed system Python, with no uv anywhere.

Debian 12 and Ubuntu 24.04 mark their Python as externally managed (PEP 668): ``pip install`` into it is refused.
The Makefile must bootstrap uv without touching that interpreter (a private copy in ``.tools/uv``) and build the
project's environment with it. This machine has Debian's Python 3.11 at ``/usr/bin/python3``, so the test runs
exactly that: a copy of the checkout (what a clone holds), ``PATH`` without any uv, ``PYTHON=/usr/bin/python3``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")

pytestmark = pytest.mark.slow


def checkout_copy(destination: Path) -> Path:
    """The files a clone of this checkout holds (tracked, and new files git does not ignore)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        source = REPO / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def test_the_system_python_here_is_externally_managed() -> None:
    marker = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert (Path(marker) / "EXTERNALLY-MANAGED").is_file(), "this test proves nothing on a Python pip may change"


def test_make_demo_from_a_fresh_checkout_on_the_externally_managed_python_with_no_uv_on_path(
    tmp_path: Path,
) -> None:
    checkout = checkout_copy(tmp_path / "checkout")
    path = os.pathsep.join(p for p in ("/usr/local/sbin", "/usr/sbin", "/usr/bin", "/sbin", "/bin") if Path(p).is_dir())
    assert shutil.which("uv", path=path) is None, "a uv on this PATH would hide the bootstrap"
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("UV_", "VIRTUAL_ENV", "PYENV", "PYTHON")) and key != "PATH"
    }
    before = subprocess.run([str(SYSTEM_PYTHON), "-m", "pip", "list"], capture_output=True, text=True, check=False)

    result = subprocess.run(
        ["make", "demo", f"PYTHON={SYSTEM_PYTHON}"],
        cwd=checkout,
        env={**environment, "PATH": path, "TERM": "dumb"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "phase Succeeded" in result.stdout
    assert (checkout / ".tools" / "uv" / "bin" / "uv").is_file()
    venv_python = subprocess.run(
        [str(checkout / ".venv" / "bin" / "python"), "-c", "import sys; print(sys.base_prefix)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert venv_python == "/usr", f".venv was made from {venv_python}, not the system Python"
    after = subprocess.run([str(SYSTEM_PYTHON), "-m", "pip", "list"], capture_output=True, text=True, check=False)
    assert after.stdout == before.stdout, "the system Python's packages changed"
    assert sys.executable not in result.stdout
