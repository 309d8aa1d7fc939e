"""Who may depend on what, checked on the source with ``ast`` (nothing is imported).

* Only ``mlops.airflow`` imports Airflow: the steps stay usable from the CLI, the trainer image and
  tests without it. Every import counts, at any level (inside functions, under ``TYPE_CHECKING``), and
  so does importing ``mlops.airflow`` itself, which would bring Airflow in.
* Only ``mlops.models`` points MLflow at a store (``mlflow.set_tracking_uri``): one owner of the
  connection, so no step depends on another having set MLflow's global first.
* No module of the package is over :data:`MAX_MODULE_LINES` lines: a longer one holds more than one concern
  and is split (an acceptance rule of the project).

Each checker is also run on planted violations, so a checker that silently finds nothing fails here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

from mlops.config import PROJECT_ROOT

INCLUDE = PROJECT_ROOT / "include"
PACKAGE = INCLUDE / "mlops"
ADAPTERS = PACKAGE / "airflow"
MLFLOW_OWNER = PACKAGE / "models.py"
SOURCE_ROOTS = (INCLUDE, PROJECT_ROOT / "dags", PROJECT_ROOT / "plugins")
AIRFLOW_MODULES = ("airflow", "mlops.airflow")
MAX_MODULE_LINES = 500


# --- the checkers -------------------------------------------------------------------------------------------
def _is_airflow(module: str) -> bool:
    return any(module == root or module.startswith(f"{root}.") for root in AIRFLOW_MODULES)


def absolute_module(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The module a (possibly relative) ``from ... import`` reads from, for a file that is ``module``."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def airflow_imports(source: str, module: str = "mlops.example", is_package: bool = False) -> list[str]:
    """``line N: <module>`` for every import of Airflow (or of ``mlops.airflow``) anywhere in ``source``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = absolute_module(node, module, is_package)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        hits = [name for name in names if _is_airflow(name)]
        if hits:
            found.append(f"line {node.lineno}: {hits[0]}")
    return found


def tracking_uri_setters(source: str) -> list[str]:
    """``line N`` for every use of ``set_tracking_uri`` (attribute access or ``from mlflow import``)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        attribute = isinstance(node, ast.Attribute) and node.attr == "set_tracking_uri"
        imported = isinstance(node, ast.ImportFrom) and any(alias.name == "set_tracking_uri" for alias in node.names)
        if attribute or imported:
            found.append(f"line {node.lineno}")
    return found


def python_files(roots: Iterable[Path]) -> list[Path]:
    return sorted(path for root in roots if root.is_dir() for path in root.rglob("*.py"))


def module_name(path: Path, package_root: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def airflow_violations(package: Path) -> list[str]:
    """Modules of ``package`` outside its ``airflow/`` adapters that import Airflow."""
    adapters = package / "airflow"
    problems = []
    for path in python_files([package]):
        if path.is_relative_to(adapters):
            continue
        module, is_package = module_name(path, package)
        for hit in airflow_imports(path.read_text(), module, is_package):
            problems.append(f"{path.relative_to(package.parent)} {hit}")
    return problems


def tracking_uri_violations(roots: Iterable[Path], owner: Path) -> list[str]:
    """Files under ``roots`` other than ``owner`` that set MLflow's tracking URI."""
    return [
        f"{path} {hit}"
        for path in python_files(roots)
        if path != owner
        for hit in tracking_uri_setters(path.read_text())
    ]


def long_modules(package: Path, limit: int = MAX_MODULE_LINES) -> list[str]:
    """``mlops/<path>: N lines`` for every module of ``package`` over ``limit`` lines."""
    found = []
    for path in python_files([package]):
        lines = len(path.read_text().splitlines())
        if lines > limit:
            found.append(f"{path.relative_to(package.parent)}: {lines} lines")
    return found


# --- the rules ----------------------------------------------------------------------------------------------
def test_only_mlops_airflow_imports_airflow() -> None:
    assert ADAPTERS.is_dir()
    assert airflow_violations(PACKAGE) == [], "move the Airflow part into include/mlops/airflow/"


def test_only_mlops_models_sets_the_mlflow_tracking_uri() -> None:
    problems = tracking_uri_violations(SOURCE_ROOTS, MLFLOW_OWNER)
    assert problems == [], "use mlops.models.use_tracking(settings) or mlops.models.client(settings)"


def test_no_module_of_the_package_is_over_500_lines() -> None:
    problems = long_modules(PACKAGE)
    assert problems == [], "\n".join([f"split these modules (at most {MAX_MODULE_LINES} lines each):", *problems])


# --- the checkers catch what they must ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "source",
    [
        "import airflow",
        "import os, airflow.sdk as sdk",
        "from airflow.sdk import task",
        "from airflow import DAG",
        "def build():\n    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator",
        "class Step:\n    def run(self):\n        if True:\n            import airflow.models",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from airflow.sdk import Context",
        "import importlib\nsdk = importlib.import_module('airflow.sdk')",
        "from mlops.airflow import run_settings",
        "from mlops import airflow",
        "import mlops.airflow.pod",
        "from .airflow import error_policy",
    ],
)
def test_airflow_checker_flags_planted_imports(source: str) -> None:
    assert airflow_imports(source, module="mlops.scoring") != []


@pytest.mark.parametrize(
    "source",
    [
        "from mlops.runtime import airflow",  # a function that runs the `airflow` CLI, not the package
        "import airflowctl_like_name",
        "from mlops.models import pin_champion",
        "text = 'import airflow'",
        "from . import models",
    ],
)
def test_airflow_checker_accepts_other_imports(source: str) -> None:
    assert airflow_imports(source, module="mlops.scoring") == []


def test_airflow_rule_walks_the_package_and_exempts_the_adapters(tmp_path: Path) -> None:
    package = tmp_path / "mlops"
    (package / "airflow").mkdir(parents=True)
    (package / "scoring").mkdir()
    (package / "airflow" / "__init__.py").write_text("from airflow.sdk import task\n")
    (package / "scoring" / "__init__.py").write_text("from . import plan\n")
    (package / "scoring" / "plan.py").write_text("def plan():\n    from ..airflow import run_settings\n")
    (package / "clean.py").write_text("import json\n")
    assert airflow_violations(package) == ["mlops/scoring/plan.py line 2: mlops.airflow"]


@pytest.mark.parametrize(
    "source",
    [
        "import mlflow\nmlflow.set_tracking_uri('sqlite:///x.db')",
        "def connect(settings):\n    import mlflow\n    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)",
        "import mlflow as m\nsetter = m.set_tracking_uri",
        "from mlflow import set_tracking_uri",
        "from mlflow.tracking import set_tracking_uri as point",
    ],
)
def test_tracking_uri_checker_flags_planted_calls(source: str) -> None:
    assert tracking_uri_setters(source) != []


def test_tracking_uri_checker_accepts_the_rest() -> None:
    assert tracking_uri_setters("import mlflow\nmlflow.get_tracking_uri()\nuri = 'set_tracking_uri'") == []


def test_tracking_uri_rule_walks_every_root_and_exempts_the_owner(tmp_path: Path) -> None:
    owner = tmp_path / "include" / "mlops" / "models.py"
    dag = tmp_path / "dags" / "nested" / "a_dag.py"
    for path in (owner, dag):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("import mlflow\nmlflow.set_tracking_uri('x')\n")
    roots = (tmp_path / "include", tmp_path / "dags", tmp_path / "plugins")
    assert tracking_uri_violations(roots, owner) == [f"{dag} line 2"]


def test_length_checker_names_each_long_module(tmp_path: Path) -> None:
    package = tmp_path / "mlops"
    (package / "web").mkdir(parents=True)
    (package / "short.py").write_text("x = 1\n" * 500)
    (package / "long.py").write_text("x = 1\n" * 501)
    (package / "web" / "data.py").write_text("x = 1\n" * 600)
    assert long_modules(package) == ["mlops/long.py: 501 lines", "mlops/web/data.py: 600 lines"]
