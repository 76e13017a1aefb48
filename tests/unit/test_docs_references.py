"""Every Markdown file the repository refers to is in the repository.

The docs, module docstrings, comments and manifests point readers at documents (``docs/install.md``, the README,
the changelog). A pointer to a document that is not shipped leaves the reader with nothing, as the references
to a design document and an ARM reference kept outside the repository once did. A reference resolves from the
repository's root or from the folder of the file that makes it (Markdown links); URLs are skipped, and so are
quoted strings, which are data (path fragments a test builds, file names in ignore-pattern cases).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHIPPED = (
    "README.md",
    "CHANGELOG.md",
    "Makefile",
    "Dockerfile",
    "pyproject.toml",
    ".ci",
    "crds",
    "deploy",
    "docs",
    "examples",
    "operator",
    "tests",
    "tools",
)
TEXT_SUFFIXES = {".md", ".py", ".yaml", ".yml", ".toml", ".sh", ".mk", ".txt", ".cfg", ""}
SKIPPED_FOLDERS = {"__pycache__", ".venv", ".tools", ".git", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
URL = re.compile(r"https?://\S+")
MARKDOWN_FILE = re.compile(r"(?<![\w/.*\"'-])((?:\.\.?/)*[\w.-]+(?:/[\w.-]+)*\.md)\b(?![\"'])")


def text_files() -> Iterator[Path]:
    for name in SHIPPED:
        top = REPO / name
        candidates = [top] if top.is_file() else top.rglob("*")
        for path in candidates:
            if path.is_file() and path.suffix in TEXT_SUFFIXES and not SKIPPED_FOLDERS & set(path.parts):
                yield path


def references(path: Path) -> Iterator[str]:
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        return
    yield from MARKDOWN_FILE.findall(URL.sub("", text))


def test_every_markdown_file_the_docs_and_the_code_refer_to_exists() -> None:
    missing = sorted(
        f"{path.relative_to(REPO)}: {name}"
        for path in text_files()
        for name in references(path)
        if not (REPO / name).is_file() and not (path.parent / name).is_file()
    )

    assert missing == [], "references to documents the repository does not hold"


def test_the_check_finds_references_in_prose_and_skips_urls_and_quoted_data() -> None:
    prose = 'See docs/install.md and (CHANGELOG.md); https://example.org/x.md is a URL; "data/x.md" is data.'

    assert MARKDOWN_FILE.findall(URL.sub("", prose)) == ["docs/install.md", "CHANGELOG.md"]
