"""What installing the package relies on, checked on the files: fast, part of ``make test``.

* docs/installing.md shows only commands the install suite runs (``tests.install.steps``), and settings it sets;
  its Dockerfile for the official image installs what the suite installs;
* pyproject.toml's ranges admit every version of requirements.lock (``-c requirements.lock`` can be satisfied),
  keep pandas below 3 and Python at 3.11 and 3.12;
* what the trainer imports is installed by the base dependencies and the ``trainer`` extra (no Airflow), what the
  Airflow side imports by the ``airflow`` extra; read from the source with ``ast`` and the installed metadata;
* the MLOps page is registered once: by the package's entry point, not by a file in plugins/;
* the trainer image installs the ``trainer`` extra only.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from mlops.config import PROJECT_ROOT
from tests.install import steps

DOCS = PROJECT_ROOT / "docs" / "installing.md"
PACKAGE = PROJECT_ROOT / "include" / "mlops"
TRAINER_DOCKERFILE = PROJECT_ROOT / "include" / "k8s" / "trainer.Dockerfile"
ENTRY_POINT = "mlops.airflow.plugin:MlopsPlugin"
#: Imports the trainer's code holds but never runs: ``mlops.training.pod_spec`` renders the pod for the Airflow side
#: (KubernetesPodOperator); the trainer imports that module for its secret-masking rules only.
TRAINER_NEVER_RUNS = {"kubernetes": "mlops.training.pod_spec"}


@cache
def pyproject() -> dict:
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


@cache
def lock() -> dict[str, Version]:
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", (PROJECT_ROOT / "requirements.lock").read_text(), flags=re.M)
    return {canonicalize_name(name): Version(version) for name, version in pins}


def fenced(text: str, language: str) -> list[str]:
    """The bodies of the ```language blocks of a Markdown text."""
    return [body.strip("\n") for body in re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.M | re.S)]


def declared(*extras: str) -> list[Requirement]:
    """The base dependencies and those of ``extras`` (self-references such as ``mlops[trainer]`` followed)."""
    project = pyproject()["project"]
    found, todo, seen = [Requirement(r) for r in project["dependencies"]], list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in project["optional-dependencies"][extra]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == "mlops":
                todo.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


def installed_closure(requirements: list[Requirement]) -> set[str]:
    """Every distribution ``requirements`` bring, through the metadata of this (locked) environment."""
    environment = default_environment()
    names: set[str] = set()
    todo = [(requirement, frozenset(requirement.extras)) for requirement in requirements]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        requirement, extras = todo.pop()
        name = canonicalize_name(requirement.name)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        names.add(name)
        for text in importlib.metadata.requires(name) or []:
            child = Requirement(text)
            wanted = [{**environment, "extra": extra} for extra in ("", *extras)]
            if child.marker is None or any(child.marker.evaluate(env) for env in wanted):
                todo.append((child, frozenset(child.extras)))
    return names


@cache
def _top_level_owners() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distributions_of(module: str) -> set[str]:
    return {canonicalize_name(name) for name in _top_level_owners().get(module, [])}


# -- the package's imports, read with ast -----------------------------------------------------------------------
def _source(module: str) -> Path | None:
    base = PROJECT_ROOT / "include" / module.replace(".", "/")
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(module: str) -> set[str]:
    """Every module ``module`` imports, at any level (inside functions too), relative imports resolved."""
    path = _source(module)
    assert path is not None, module
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *([node.module] if node.module else [])])
            names |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
    return names


def third_party_imports(start: list[str]) -> dict[str, set[str]]:
    """``{top-level module: the mlops modules importing it}`` over every mlops module ``start`` reaches."""
    seen: set[str] = set()
    todo = list(start)
    found: dict[str, set[str]] = {}
    while todo:
        module = todo.pop()
        if module in seen or _source(module) is None:
            continue
        seen.add(module)
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # importing a module runs its packages
        for name in _imports(module):
            top = name.split(".")[0]
            if top == "mlops":
                todo.append(name)
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.setdefault(top, set()).add(module)
    return found


def missing(imports: dict[str, set[str]], installed: set[str], exempt: dict[str, str]) -> list[str]:
    problems = []
    for top, importers in sorted(imports.items()):
        if exempt.get(top) and importers <= {exempt[top]}:
            continue
        if not distributions_of(top) & installed:
            problems.append(f"{top} (imported by {', '.join(sorted(importers))})")
    return problems


# -- docs/installing.md ---------------------------------------------------------------------------------------
def test_every_documented_command_is_one_the_install_suite_runs() -> None:
    blocks = fenced(DOCS.read_text(), "bash")
    assert len(blocks) >= 8, "docs/installing.md shows its commands in ```bash blocks"
    unknown = [block for block in blocks if block not in steps.DOCUMENTED]
    assert not unknown, "docs/installing.md shows commands tests/install does not run:\n\n" + "\n\n".join(unknown)
    shown = set(blocks)
    assert {steps.BUILD, steps.INSTALL, steps.FILES, steps.TRAINER_VENV} <= shown, "the essential steps are shown"


def test_documented_settings_are_the_ones_the_install_suite_sets() -> None:
    settings = [re.findall(r"^export (\w+)=", block, flags=re.M) for block in fenced(DOCS.read_text(), "shell")]
    names = [name for block in settings for name in block]
    assert names and set(names) <= set(steps.SETTINGS), sorted(set(names) - set(steps.SETTINGS))


def test_the_official_image_dockerfile_installs_what_the_suite_installs() -> None:
    (dockerfile,) = fenced(DOCS.read_text(), "dockerfile")
    base = re.search(r"^FROM apache/airflow:(\S+)-python(3\.\d+)$", dockerfile, flags=re.M)
    assert base and Version(base.group(1)) == lock()["apache-airflow"] and base.group(2) in ("3.11", "3.12")
    install = " ".join(re.findall(r"^RUN (.*pip install.*)$", dockerfile.replace("\\\n", " "), flags=re.M))
    wheel = Path(steps.WHEEL).name
    assert re.search(rf'-c \S*requirements\.lock .*"\S*{re.escape(wheel)}\[airflow\]"', install), install
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in install, "keep the image's Airflow, as its docs advise"
    assert re.search(r"^COPY .*dags/mlops_models\.py dags/mlops_model_check\.py ", dockerfile, flags=re.M)
    assert re.search(r"^ENV .*MLOPS_MODELS_DIR=", dockerfile, flags=re.M)


def test_the_documented_sizes_are_stated() -> None:
    """The install suite measures them and compares (var/test-artifacts/install/numbers.json)."""
    text = DOCS.read_text()
    stated = re.search(r"the trainer venv measures ([\d.]+) GB, the Airflow venv ([\d.]+) GB", text)
    assert stated, "docs/installing.md states both venv sizes"
    trainer, airflow = map(float, stated.groups())
    assert 0.5 < trainer < airflow, "the trainer venv is the smaller one"


# -- pyproject.toml -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra", ["trainer", "airflow", "dev"])
def test_every_declared_range_admits_the_locked_version(extra: str) -> None:
    for requirement in declared(extra):
        name = canonicalize_name(requirement.name)
        assert name in lock(), f"{name} is declared but not in requirements.lock"
        assert requirement.specifier.contains(lock()[name], prereleases=True), (str(requirement), lock()[name])
        if requirement.extras:
            assert requirement.extras <= set(importlib.metadata.metadata(name).get_all("Provides-Extra") or [])


def test_pandas_stays_below_3_and_python_is_3_11_or_3_12() -> None:
    (pandas,) = [r for r in declared("airflow") if r.name == "pandas"]
    assert not pandas.specifier.contains("3.0.0") and pandas.specifier.contains(str(lock()["pandas"]))
    python = Requirement(f"python{pyproject()['project']['requires-python']}").specifier
    assert [python.contains(v) for v in ("3.10.14", "3.11.9", "3.12.7", "3.13.0")] == [False, True, True, False]


def test_the_trainer_extra_installs_what_the_trainer_imports_and_no_airflow() -> None:
    installed = installed_closure(declared("trainer"))
    assert not {name for name in installed if name.startswith("apache-airflow")}, "the trainer must not get Airflow"
    assert not installed & {"great-expectations", "evidently", "pytest", "moto", "playwright"}
    imports = third_party_imports(["mlops.training.__main__"])
    assert {"xgboost", "mlflow", "dvc", "pyarrow"} <= set(imports), "the walk follows the lazy imports"
    assert "airflow" not in imports
    assert missing(imports, installed, TRAINER_NEVER_RUNS) == []


def test_the_airflow_extra_installs_what_the_whole_package_imports() -> None:
    modules = [".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts) for path in PACKAGE.rglob("*.py")]
    modules = [module.removesuffix(".__init__") for module in modules]
    imports = third_party_imports(modules)
    assert {"airflow", "great_expectations", "evidently", "fastapi"} <= set(imports)
    assert missing(imports, installed_closure(declared("airflow")), {}) == []


def test_the_checkers_find_a_planted_gap() -> None:
    """The closure and the mapping really decide: an import nothing declares is reported."""
    assert missing({"moto": {"mlops.example"}}, installed_closure(declared("trainer")), {}) == [
        "moto (imported by mlops.example)"
    ]
    assert missing({"kubernetes": {"mlops.other"}}, set(), TRAINER_NEVER_RUNS) == [
        "kubernetes (imported by mlops.other)"
    ]


# -- the plugin and the trainer image ---------------------------------------------------------------------------
def test_the_mlops_page_is_registered_once_by_the_entry_point() -> None:
    entry_points = pyproject()["project"]["entry-points"]["airflow.plugins"]
    assert entry_points == {"mlops": ENTRY_POINT}
    module, _, name = ENTRY_POINT.partition(":")
    tree = ast.parse(_source(module).read_text())
    (plugin,) = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name]
    assigned = {
        target.id: node.value for node in plugin.body if isinstance(node, ast.Assign) for target in node.targets
    }
    assert isinstance(assigned["name"], ast.Constant) and assigned["name"].value == "mlops"
    # The embedded setup and docker-compose point Airflow's plugins folder at plugins/: a second registration there
    # would be refused as "already registered" and shown as a plugin import error.
    in_folder = [path for path in (PROJECT_ROOT / "plugins").rglob("*.py") if "mlops" in path.read_text()]
    assert in_folder == [], f"plugins/ registers the MLOps page a second time: {in_folder}"


def test_the_trainer_image_installs_the_trainer_extra_only() -> None:
    text = TRAINER_DOCKERFILE.read_text().replace("\\\n", " ")
    compile_ = re.search(r"uv pip compile pyproject\.toml (.*?)--output-file (\S+)", text)
    assert compile_ and "--extra trainer" in compile_.group(1) and "--constraint requirements.lock" in compile_.group(1)
    assert re.search(rf"uv pip sync [^\n]*{re.escape(compile_.group(2))}", text), "sync exactly the trainer's lock"
    assert not re.search(r"uv pip sync [^\n]* requirements\.lock", text), "the full lock holds Airflow and test tools"
    assert not re.search(r"--extra (airflow|dev)|\[(airflow|dev)\]", text)
