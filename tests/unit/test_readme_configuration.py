"""The README's configuration table names every variable the operator reads, and only those.

The variables are found where they are read: every ``SCALESET_IMAGE_*`` name in the package's source (settings,
the log format, the CLI's flag help). A new one without a row in the README's "## Configuration" table fails here,
as ``SCALESET_IMAGE_ARM_SCOPE`` once went undocumented (a sovereign cloud needs it beside the endpoint).
"""

from __future__ import annotations

import re
from pathlib import Path

from scaleset_image_operator.settings import Settings

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "operator" / "scaleset_image_operator"
VARIABLE = re.compile(r"\bSCALESET_IMAGE_[A-Z_]*[A-Z]\b")


def configuration_rows() -> dict[str, list[str]]:
    """{variable: the cells after the first} for each row of the README's configuration table."""
    text = (REPO / "README.md").read_text()
    start = text.index("\n## Configuration\n")
    end = text.find("\n## ", start + 1)
    rows: dict[str, list[str]] = {}
    for line in text[start:end].splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
            for name in VARIABLE.findall(cells[0]):
                rows[name] = cells[1:]
    return rows


def variables_the_package_reads() -> set[str]:
    return {name for path in PACKAGE.rglob("*.py") for name in VARIABLE.findall(path.read_text())}


def test_every_variable_the_operator_reads_has_a_row_in_the_readme_configuration_table_and_no_other() -> None:
    documented, read = set(configuration_rows()), variables_the_package_reads()

    assert (sorted(read - documented), sorted(documented - read)) == ([], []), (
        "(read by the operator but not in the README's configuration table, in the table but never read)"
    )


def test_the_readme_gives_the_arm_scope_s_default() -> None:
    assert f"`{Settings().arm_scope}`" in configuration_rows()["SCALESET_IMAGE_ARM_SCOPE"][-1]
