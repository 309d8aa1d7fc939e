"""The module map of ``docs/architecture.md`` is true: read as data, checked against every import in the package.

The table ("## Module map": module | owns | may import) is the layering rule. Each ``mlops -> mlops`` import,
at any level (inside functions, under ``TYPE_CHECKING``), is found with ``ast`` and must be allowed by the
importing module's row. Third-party imports are not this test's business (``test_architecture`` keeps Airflow
and MLflow's tracking URI in their place). How a row reads:

* the module cell names modules in backticks (``validation``, ``gx_suite``); a name covers its submodules too
  (``scoring`` (package), ``data.*``), and the most specific row wins (``airflow.dags`` over ``airflow``);
* the "may import" cell: every word naming a package module allows it and its submodules (``data.*``,
  ``models``); other words (pydantic, "the writers' lock") are prose; "everything above" allows any module;
* a module may always import its own row's modules, its own packages and its own submodules;
* "Every module may import the foundation: ``config``, ..." (the line above the table) names modules any
  module may import, except the foundation's own modules: they may import only what their rows list;
* every module has a row; the package root (``mlops/__init__.py``) has none and may import nothing of ``mlops``.

No import cycle among the package's modules either (a submodule reading its own package's ``__init__`` is not
one). Each checker also runs on planted violations, so a checker that silently finds nothing fails here.
"""

from __future__ import annotations

import ast
import graphlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops.config import PROJECT_ROOT
from tests.unit.test_architecture import PACKAGE, absolute_module, module_name, python_files

ARCHITECTURE = PROJECT_ROOT / "docs" / "architecture.md"
TABLE_HEADING = "## Module map"
EVERYTHING = "everything above"
FOUNDATION = re.compile(r"^Every module may import the foundation: (.+)$", re.MULTILINE)
_WORD = re.compile(r"(?<![\w.])[a-z_][a-z0-9_]*(?:\.(?:[a-z_][a-z0-9_]*|\*))*(?![\w])")


@dataclass(frozen=True)
class Row:
    """One row of the module map; names are relative to the package (``data.lake``, ``""`` is the root)."""

    modules: tuple[str, ...]
    may_import: tuple[str, ...]
    anything: bool


def _inside(name: str, prefix: str) -> bool:
    """``name`` is ``prefix`` or one of its submodules."""
    return name == prefix or name.startswith(f"{prefix}.")


def module_map(markdown: str) -> list[Row]:
    """The rows of the module map table in ``markdown``; a malformed row fails, naming it."""
    if TABLE_HEADING not in markdown:
        raise AssertionError(f"docs/architecture.md has no {TABLE_HEADING!r} section")
    section = markdown.split(TABLE_HEADING, 1)[1].split("\n## ", 1)[0]
    rows: list[Row] = []
    for line in section.splitlines():
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == "module" or set(cells[0]) <= set("-: "):
            continue  # the header and its rule
        if len(cells) != 3 or not re.findall(r"`([^`]+)`", cells[0]):
            raise AssertionError(f"module map row {line!r}: expected `module` | owns | may import")
        modules = tuple(name.removesuffix(".*") for name in re.findall(r"`([^`]+)`", cells[0]))
        allowed = cells[2].replace("`", "")
        may_import = tuple(word.removesuffix(".*") for word in _WORD.findall(allowed))
        rows.append(Row(modules, may_import, anything=EVERYTHING in allowed.lower()))
    return rows


def foundation(markdown: str) -> tuple[str, ...]:
    """The modules every module may import, from the module map's foundation line (none without one)."""
    section = markdown.split(TABLE_HEADING, 1)[-1].split("\n## ", 1)[0]
    line = FOUNDATION.search(section)
    return tuple(re.findall(r"`([^`]+)`", line.group(1))) if line else ()


def package_modules(package: Path) -> dict[str, tuple[Path, bool]]:
    """``{name relative to the package: (file, is a package)}`` for every module of ``package``."""
    found: dict[str, tuple[Path, bool]] = {}
    for path in python_files([package]):
        name, is_package = module_name(path, package)
        found[name.removeprefix(package.name).removeprefix(".")] = (path, is_package)
    return found


def row_of(name: str, rows: list[Row]) -> Row | None:
    """The most specific row covering module ``name``, or None."""
    covering = [(len(covered), row) for row in rows for covered in row.modules if _inside(name, covered)]
    return max(covering, key=lambda pair: pair[0])[1] if covering else None


def _resolve(dotted: str, known: set[str], root: str) -> str | None:
    """The package module an imported dotted name is in (``mlops.data.lake.Lake`` -> ``data.lake``), or None."""
    if not _inside(dotted, root):
        return None
    name = dotted.removeprefix(root).removeprefix(".")
    while name not in known:
        if "." not in name:
            return "" if "" in known else None
        name = name.rpartition(".")[0]
    return name


def package_imports(source: str, module: str, is_package: bool, known: set[str], root: str) -> list[tuple[int, str]]:
    """``(line, module)`` for each import of a module of package ``root`` anywhere in ``source``.

    ``from a import b`` imports ``a.b`` when that is a module, else ``a`` (``b`` is a name defined there).
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = absolute_module(node, f"{root}.{module}" if module else root, is_package)
            names = [
                f"{base}.{alias.name}" if _resolve(f"{base}.{alias.name}", known, root) != _resolve(base, known, root)
                else base
                for alias in node.names
            ]  # fmt: skip
        for name in names:
            target = _resolve(name, known, root)
            if target is not None:
                found.append((node.lineno, target))
    return found


def import_graph(package: Path) -> dict[str, dict[str, int]]:
    """``{module: {imported module: first line}}`` over the modules of ``package``."""
    modules = package_modules(package)
    graph: dict[str, dict[str, int]] = {}
    for name, (path, is_package) in modules.items():
        edges = graph.setdefault(name, {})
        for line, target in package_imports(path.read_text(), name, is_package, set(modules), package.name):
            edges.setdefault(target, line)
    return graph


def _allowed(module: str, target: str, row: Row, rows: list[Row], base: tuple[str, ...]) -> bool:
    if _inside(module, target) or _inside(target, module):  # itself, its own packages, its own submodules
        return True
    if row.anything or row is row_of(target, rows):
        return True
    in_base = any(_inside(module, name) for name in base)
    return any(_inside(target, allowed) for allowed in (*row.may_import, *(() if in_base else base)))


def layering_violations(package: Path, markdown: str) -> list[str]:
    """Modules without a row, and imports their row does not allow, each naming the file, the line and the rule."""
    rows, base = module_map(markdown), foundation(markdown)
    root = package.name
    known = set(package_modules(package))
    problems: list[str] = []
    for name in sorted(known):
        if name and row_of(name, rows) is None:
            problems.append(f"{root}.{name}: no row in the module map names it")
    for name, edges in import_graph(package).items():
        row = row_of(name, rows)
        for target, line in sorted(edges.items()):
            if not name and target:
                problems.append(f"{root}/__init__.py line {line}: the package root imports {root}.{target}")
            elif row is not None and not _allowed(name, target, row, rows, base):
                allowed = ", ".join(word for word in row.may_import if word in known) or "nothing"
                problems.append(f"{root}.{name} line {line}: imports {root}.{target}; its row allows: {allowed}")
    return problems


def import_cycle(package: Path) -> list[str]:
    """One import cycle among the modules of ``package`` (``[a, b, a]``), or ``[]``.

    An import of the module's own package (its ``__init__``) is not an edge: Python has run it already.
    """
    graph = {name: {t for t in edges if not _inside(name, t)} for name, edges in import_graph(package).items()}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as cycle:
        return [f"{package.name}.{name}".rstrip(".") for name in cycle.args[1]]
    return []


def rows_naming_nothing(package: Path, markdown: str) -> list[str]:
    """Module cells naming a module that does not exist (a stale table)."""
    known = set(package_modules(package))
    return [name for row in module_map(markdown) for name in row.modules if name not in known]


# --- the rules ----------------------------------------------------------------------------------------------
def test_every_import_in_the_package_is_allowed_by_the_module_map() -> None:
    problems = layering_violations(PACKAGE, ARCHITECTURE.read_text())
    assert problems == [], "\n".join(["fix the import or the row in docs/architecture.md:", *problems])


def test_the_module_map_names_only_modules_that_exist() -> None:
    assert rows_naming_nothing(PACKAGE, ARCHITECTURE.read_text()) == []


def test_no_import_cycle_among_the_package_modules() -> None:
    assert import_cycle(PACKAGE) == []


# --- the checkers catch what they must ----------------------------------------------------------------------
TABLE = """# Architecture

## Module map

Every module may import the foundation: `errors`, `serialization`.

| module | owns | may import |
|---|---|---|
| `errors` | failure kinds | nothing |
| `serialization` | JSON-safe values | errors |
| `config` | settings | pydantic, errors |
| `data.*` | the lake | config |
| `scoring` (package) | scoring | data.*, `config` (inside functions) |
| `airflow` (package) | adapters | Airflow SDK, config |
| `airflow.dags` | the DAG factory | airflow, scoring |
| `cli` | commands | everything above |

## Next section

| `late` | not the module map | nothing |
"""


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    package = tmp_path / "mlops"
    for relative, source in {"__init__.py": "", **files}.items():
        path = package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return package


CLEAN = {
    "errors.py": "import json\n",
    "serialization.py": "from mlops.errors import InputError\n",
    "config.py": "import pydantic\nfrom mlops.errors import InputError\n",
    "data/__init__.py": "",
    "data/lake.py": "from mlops.config import load_settings\n",
    "data/publish.py": "from mlops.data.lake import Lake\nfrom mlops.serialization import to_jsonable\n",
    "scoring/__init__.py": "from mlops.scoring.plan import plan\n",
    "scoring/plan.py": "from mlops import scoring\nfrom mlops.data import lake\n\ndef f():\n    import mlops.config\n",
    "airflow/__init__.py": "from airflow.sdk import DAG\nfrom mlops.config import Settings\n",
    "airflow/dags/__init__.py": "from mlops.airflow import run_settings\nfrom ...scoring import plan\n",
    "cli.py": "def main():\n    from mlops.airflow.dags import generate\n",
}


def test_the_module_map_is_read_as_data() -> None:
    rows = module_map(TABLE)
    assert foundation(TABLE) == ("errors", "serialization")
    assert [row.modules for row in rows] == [
        ("errors",), ("serialization",), ("config",), ("data",), ("scoring",), ("airflow",), ("airflow.dags",), ("cli",)
    ]  # fmt: skip
    assert rows[0].may_import == ("nothing",) and rows[4].may_import == ("data", "config", "inside", "functions")
    assert rows[5].may_import == ("config",)  # "Airflow SDK" is not a package module
    assert rows[-1].anything and not rows[-2].anything
    assert row_of("airflow.dags.drift", rows) is rows[6] and row_of("airflow.pod", rows) is rows[5]


def test_a_package_that_keeps_its_map_passes(tmp_path: Path) -> None:
    package = _package(tmp_path, CLEAN)
    assert layering_violations(package, TABLE) == []
    assert import_cycle(package) == []


@pytest.mark.parametrize(
    ("relative", "source", "problem"),
    [
        ("errors.py", "def f():\n    from mlops.config import load_settings\n",
         "mlops.errors line 2: imports mlops.config; its row allows: nothing"),
        ("errors.py", "from mlops.serialization import to_jsonable\n",  # the foundation keeps its own rows
         "mlops.errors line 1: imports mlops.serialization; its row allows: nothing"),
        ("config.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mlops.data.lake import Lake\n",
         "mlops.config line 3: imports mlops.data.lake; its row allows: errors"),
        ("data/lake.py", "from ..scoring import plan\n",
         "mlops.data.lake line 1: imports mlops.scoring.plan; its row allows: config"),
        ("scoring/plan.py", "import mlops.airflow.dags\n",
         "mlops.scoring.plan line 1: imports mlops.airflow.dags; its row allows: data, config"),
        ("airflow/pod.py", "from mlops.scoring import plan\n",
         "mlops.airflow.pod line 1: imports mlops.scoring.plan; its row allows: config"),
        ("__init__.py", "from mlops.cli import main\n", "mlops/__init__.py line 1: the package root imports mlops.cli"),
        ("web.py", "import json\n", "mlops.web: no row in the module map names it"),
    ],
)  # fmt: skip
def test_a_planted_violation_is_named_with_its_module_line_and_rule(
    tmp_path: Path, relative: str, source: str, problem: str
) -> None:
    package = _package(tmp_path, {**CLEAN, relative: source})
    assert layering_violations(package, TABLE) == [problem]


def test_a_planted_cycle_is_caught(tmp_path: Path) -> None:
    cycle = {**CLEAN, "errors.py": "def f():\n    from mlops.cli import main\n"}  # cli -> ... -> errors -> cli
    cycle["config.py"] = "from mlops.errors import InputError\n"
    cycle["cli.py"] = "from mlops.config import Settings\n"
    found = import_cycle(_package(tmp_path, cycle))
    assert found[0] == found[-1] and set(found) == {"mlops.errors", "mlops.cli", "mlops.config"}


def test_a_row_naming_a_module_that_does_not_exist_is_caught(tmp_path: Path) -> None:
    package = _package(tmp_path, {key: value for key, value in CLEAN.items() if key != "cli.py"})
    assert rows_naming_nothing(package, TABLE) == ["cli"]
