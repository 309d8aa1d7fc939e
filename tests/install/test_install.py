"""Acceptance: the built wheel added to a fresh Airflow 3 outside the checkout, as docs/installing.md tells a user.

The wheel (not an editable install) goes into a fresh venv beside the pinned Airflow, with requirements.lock as
constraints; only the DAG factory files and two model files (with their contracts) are copied into a fresh
Airflow home. Then: both models' DAGs parse, ``airflow plugins`` lists the MLOps page once (from the package's
entry point), the DAGs parse and one model's chain runs under Python 3.12 too, a broken model file shows as an
import error naming the file and the key while the other model's chain (validation, training, promotion) runs,
and the ``trainer`` extra alone (no Airflow) trains a model. Each step is a script of
:mod:`tests.install.steps`, the commands of the docs.

Marker ``install``: not part of ``make test``; ``.ci/run`` runs it after the topology suite. Logs of every step
and the measured sizes (``numbers.json``) are in ``var/test-artifacts/install/``.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from mlops.config import PROJECT_ROOT
from mlops.runtime import embedded_env
from tests.install import steps

pytestmark = pytest.mark.install

ARTIFACTS = PROJECT_ROOT / "var" / "test-artifacts" / "install"
#: What a user's checkout holds that the steps read (nothing else is copied).
CHECKOUT_FILES = ("pyproject.toml", "README.md", "requirements.lock", "dags/mlops_models.py",
                  "dags/mlops_model_check.py", "include/mlops", "include/models", "include/contracts")  # fmt: skip
BROKEN_MODEL = "customer_churn"
BROKEN_KEY = "training.window_dayz"
#: Modules only the Airflow side or the test suite needs: none of them may be in the trainer venv.
NOT_IN_TRAINER = ("airflow", "great_expectations", "evidently", "pytest", "moto", "playwright", "ruff")
DAY_ONE = dt.date.fromisoformat(steps.START)


class Shell:
    """Runs the steps' scripts with one clean environment: nothing of the checkout's venv or the caller's config."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.checkout = work / "checkout"
        self.deploy = work / "deploy"
        uv_bin = work / "uv-bin"
        uv_bin.mkdir()
        (uv_bin / "uv").symlink_to(Path(sys.executable).with_name("uv"))
        home = self.deploy / "airflow"
        self.uv_bin = uv_bin
        # The caller's env (proxy, CA bundle) without any Python, venv, Airflow, MLflow or platform setting.
        skip = ("AIRFLOW", "MLOPS", "MLFLOW", "PYTHON", "VIRTUAL_ENV", "PYENV", "CONDA", "PATH")
        kept = {key: value for key, value in os.environ.items() if not key.startswith(skip)}
        self.env = {
            **kept,
            "PATH": self.path(work / "venv"),
            "UV_PYTHON_DOWNLOADS": "never",  # the interpreters this machine has; never a download
            "UV_NO_PROGRESS": "1",
            "VENV": str(work / "venv"),
            "TRAINER_VENV": str(work / "trainer-venv"),
            "AIRFLOW_HOME": str(home),
            "MLOPS_HOME": str(home / "mlops"),
            "MLOPS_MODELS_DIR": str(home / "mlops-models"),
            "AIRFLOW_CONN_FS_DEFAULT": '{"conn_type": "fs", "extra": {"path": "/"}}',
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "GX_ANALYTICS_ENABLED": "false",
            "DVC_NO_ANALYTICS": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        assert set(steps.SETTINGS) <= set(self.env), "every documented setting is set here"

    def path(self, venv: Path) -> str:
        """PATH with ``venv`` activated, uv, and the system's tools: never the checkout's .venv."""
        return f"{venv / 'bin'}:{self.uv_bin}:/usr/local/bin:/usr/bin:/bin"

    def run(self, name: str, script: str, *, in_checkout: bool = False, check: bool = True,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """``bash -euo pipefail -c script``; its output goes to ``ARTIFACTS/<name>.log``."""
        cwd = self.checkout if in_checkout else self.deploy
        cwd.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env={**self.env, **(env or {})},
                                capture_output=True, text=True, timeout=1200)  # fmt: skip
        (ARTIFACTS / f"{name}.log").write_text(
            f"$ {script}\n(exit {result.returncode})\n{result.stdout}\n{result.stderr}"
        )
        if check:
            assert result.returncode == 0, f"{name} failed:\n$ {script}\n{tail(result)}"
        return result

    def json(self, name: str, script: str, **kwargs: Any) -> Any:
        """The JSON an ``-o json`` command prints (Airflow logs its warnings on stdout first)."""
        result = self.run(name, script, **kwargs)
        out = result.stdout + result.stderr
        line = next((line for line in reversed(out.splitlines()) if line.startswith(("[", "{"))), None)
        assert line is not None, f"{name}: no JSON in its output:\n{out[-3000:]}"
        return json.loads(line)

    def model_file(self, name: str) -> Path:
        return Path(self.env["MLOPS_MODELS_DIR"]) / f"{name}.yaml"


def tail(result: subprocess.CompletedProcess[str], size: int = 4000) -> str:
    return (result.stdout + "\n" + result.stderr)[-size:]


def megabytes(path: Path) -> int:
    return int(subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])


def record(**numbers: Any) -> None:
    """Measured numbers (sizes) for docs/installing.md, kept with the logs."""
    path = ARTIFACTS / "numbers.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**current, **numbers}, indent=2, sort_keys=True))


def task_states(airflow_home: Path, dag_id: str, day: str) -> dict[str, str]:
    """Task states of the latest run of ``dag_id`` for logical date ``day``, from the metadata DB."""
    with closing(sqlite3.connect(airflow_home / "airflow.db")) as db:
        row = db.execute("SELECT run_id FROM dag_run WHERE dag_id = ? AND date(logical_date) = ? ORDER BY id DESC",
                         (dag_id, day)).fetchone()  # fmt: skip
        assert row, f"no run of {dag_id} for {day}"
        rows = db.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", (dag_id, row[0]))
        return dict(rows.fetchall())


# -- fixtures: one fresh install per module ------------------------------------------------------------------
@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shell]:
    """A copy of the checkout's files the steps read, and a deployment folder outside both."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    shell = Shell(tmp_path_factory.mktemp("install"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for relative in CHECKOUT_FILES:
        source, target = PROJECT_ROOT / relative, shell.checkout / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore)
        else:
            shutil.copy2(source, target)
    print(f"\n==> install suite in {shell.work}; logs in {ARTIFACTS}", flush=True)
    yield shell
    for venv in ("venv", "trainer-venv", "venv-3.12"):  # ~5 GB of files (hard links into uv's cache)
        shutil.rmtree(shell.work / venv, ignore_errors=True)


@pytest.fixture(scope="module")
def wheel(shell: Shell) -> Path:
    shell.run("build", steps.BUILD, in_checkout=True)
    path = shell.checkout / steps.WHEEL
    assert path.is_file(), f"the build made {sorted(p.name for p in path.parent.glob('*'))}, not {steps.WHEEL}"
    record(wheel_kb=round(path.stat().st_size / 1024))
    return path


@pytest.fixture(scope="module")
def airflow_env(shell: Shell, wheel: Path) -> Shell:
    """A fresh Airflow 3 venv (the pinned Airflow first, as a user's existing one), then the wheel; files; DB."""
    shell.run("airflow-venv", steps.AIRFLOW_VENV, in_checkout=True)
    shell.run("install", steps.INSTALL, in_checkout=True)
    shell.run("files", steps.FILES, in_checkout=True)
    shell.run("migrate", steps.MIGRATE)
    record(airflow_venv_mb=megabytes(Path(shell.env["VENV"])))
    return shell


@pytest.fixture(scope="module")
def broken(airflow_env: Shell) -> Shell:
    """The second model's file with a misspelt key (``window_dayz``), as a careless edit would leave it."""
    path = airflow_env.model_file(BROKEN_MODEL)
    text = path.read_text()
    assert re.search(r"^training: \{window_days:", text, flags=re.M), "the test breaks this line of the model file"
    path.write_text(re.sub(r"^training: \{window_days:", "training: {window_dayz:", text, flags=re.M))
    return airflow_env


def run_chain(shell: Shell, env: Mapping[str, str] | None = None, suffix: str = "") -> dict[str, Any]:
    """Land 10 days of the good model, validate them (Airflow runs and the CLI), train through the DAG."""
    shell.run(f"generate{suffix}", steps.GENERATE, env=env)
    shell.run(f"validate{suffix}", steps.VALIDATE, env=env)
    # The other days exactly as `mlops validate --model M --date D` (steps.VALIDATE), in one process.
    days = [(DAY_ONE + dt.timedelta(days=offset)).isoformat() for offset in range(3, steps.DAYS)]
    code = f"from mlops.cli import main\nfor day in {days!r}:\n    assert main(['validate', '--date', day]) == 0, day"
    one_model = {**(env or {}), "MLOPS_MODEL": steps.MODEL}
    shell.run(f"validate-rest{suffix}", f"python - <<'EOF'\n{code}\nEOF", env=one_model)
    train = shell.run(f"train{suffix}", steps.TRAIN, env=env)
    champion = shell.run(f"champion{suffix}", steps.CHAMPION, env=env)
    return {"train": train, "champion": champion}


def assert_chain_ran(env: Mapping[str, str], chain: dict[str, Any]) -> None:
    """Every day validated by Airflow or the CLI, the training run promoted, and the CLI shows the champion."""
    home = Path(env["AIRFLOW_HOME"])
    lake = Path(env["MLOPS_HOME"]) / "lake" / steps.MODEL
    for day in (steps.START, "2026-10-02"):
        states = task_states(home, f"{steps.MODEL}__data_validation", day)
        assert set(states.values()) == {"success"}, (day, states)
    validated = sorted(path.parent.name for path in lake.glob("raw/dt=*/_VALIDATED.json"))
    assert validated == [f"dt={DAY_ONE + dt.timedelta(days=offset)}" for offset in range(steps.DAYS)]

    states = task_states(home, f"{steps.MODEL}__continuous_training", steps.AS_OF)
    assert states["train"] == "success" and states["promote"] == "success", states
    shown = chain["champion"].stdout
    assert re.search(rf"model {steps.MODEL}: champion v1\b", shown), shown
    assert f"by airflow:{steps.MODEL}__continuous_training" in shown, shown


@pytest.fixture(scope="module")
def chain(broken: Shell) -> dict[str, Any]:
    return run_chain(broken)


@pytest.fixture(scope="module")
def py312(airflow_env: Shell) -> dict[str, str]:
    """The same wheel in a Python 3.12 venv, with an Airflow home and platform home of its own (same models)."""
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python")))
    if not found:
        pytest.skip("no Python 3.12 under ~/.pyenv/versions")
    shell, venv = airflow_env, airflow_env.work / "venv-3.12"
    home = venv / "home"
    env = {"VENV": str(venv), "PATH": shell.path(venv), "AIRFLOW_HOME": str(home), "MLOPS_HOME": str(home / "mlops")}
    shell.run("venv-3.12", f'uv venv --python {found[-1]} "$VENV"', env=env)
    shell.run("install-3.12", steps.INSTALL, in_checkout=True, env=env)  # the wheel brings Airflow itself
    probe = "python -c 'import sys; print(sys.version_info[:2])'"
    version = shell.run("version-3.12", probe, env=env).stdout
    assert version.startswith("(3, 12)"), version
    dags = 'mkdir -p "$AIRFLOW_HOME/dags"\ncp dags/mlops_models.py dags/mlops_model_check.py "$AIRFLOW_HOME/dags/"'
    shell.run("files-3.12", dags, in_checkout=True, env=env)
    return env


# -- the acceptance ------------------------------------------------------------------------------------------
def test_the_wheel_holds_the_package_its_web_assets_and_the_plugin_entry_point(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read("mlops-0.1.0.dist-info/entry_points.txt").decode()
        metadata = archive.read("mlops-0.1.0.dist-info/METADATA").decode()
    static = PROJECT_ROOT / "include" / "mlops" / "web" / "static"
    assets = {
        f"mlops/{path.relative_to(static.parent.parent).as_posix()}" for path in static.rglob("*") if path.is_file()
    }
    assert assets and assets <= names, f"web assets missing from the wheel: {sorted(assets - names)}"
    assert "mlops/py.typed" in names and "mlops/airflow/plugin.py" in names
    assert {name.split("/")[0] for name in names} == {"mlops", "mlops-0.1.0.dist-info"}, "only the package"
    assert re.search(r"^\[airflow\.plugins\]\nmlops = mlops\.airflow\.plugin:MlopsPlugin$", entry_points, re.M)
    assert "Requires-Python: <3.13,>=3.11" in metadata
    for extra in ("airflow", "trainer", "dev"):
        assert f"Provides-Extra: {extra}" in metadata


def test_both_models_parse_and_the_plugin_is_listed_once(airflow_env: Shell) -> None:
    shell = airflow_env
    where = shell.run("where", 'python -c "import mlops; print(mlops.__file__)"').stdout.strip()
    assert where.startswith(shell.env["VENV"]) and "site-packages" in where, f"mlops imported from {where}"
    assert sorted(p.name for p in (Path(shell.env["AIRFLOW_HOME"]) / "dags").iterdir()) == [
        "mlops_model_check.py", "mlops_models.py"]  # fmt: skip

    assert shell.json("import-errors", steps.IMPORT_ERRORS) == []
    dag_ids = {dag["dag_id"] for dag in shell.json("dags", steps.DAGS)}
    kinds = ("data_validation", "continuous_training", "batch_scoring", "drift_monitoring", "model_rollback")
    assert dag_ids == {f"{model}__{kind}" for model in (steps.MODEL, BROKEN_MODEL) for kind in kinds}

    (plugin,) = [p for p in shell.json("plugins", steps.PLUGINS) if p["name"] == "mlops"]
    assert "mlops.airflow.plugin:MlopsPlugin" in plugin["source"] and "airflow.plugins" in plugin["source"]
    assert [app["url_prefix"] for app in plugin["fastapi_apps"]] == ["/mlops"]
    assert [view["name"] for view in plugin["external_views"]] == ["MLOps", "MLOps evidence", "MLOps"]


def test_the_dags_also_parse_under_python_3_12(airflow_env: Shell, py312: dict[str, str]) -> None:
    # The same DAG files and models folder, parsed as the dag-processor does (a DagBag: no metadata DB needed).
    dags_folder = Path(py312["AIRFLOW_HOME"]) / "dags"
    bag = ("import json\nfrom airflow.dag_processing.dagbag import DagBag\n"
           f"bag = DagBag({str(dags_folder)!r})\n"
           "print(json.dumps({'dags': sorted(bag.dag_ids), 'errors': bag.import_errors}))")  # fmt: skip
    parsed = airflow_env.json("parse-3.12", f"python - <<'EOF'\n{bag}\nEOF", env=py312)
    assert parsed["errors"] == {}, parsed["errors"]
    assert len(parsed["dags"]) == 10 and {dag.split("__")[0] for dag in parsed["dags"]} == {steps.MODEL, BROKEN_MODEL}


def test_one_model_runs_its_chain_under_python_3_12(airflow_env: Shell, py312: dict[str, str]) -> None:
    """Validation (Airflow and the CLI), training, gates and promotion through the DAG, all on Python 3.12."""
    airflow_env.run("migrate-3.12", steps.MIGRATE, env=py312)
    assert_chain_ran(py312, run_chain(airflow_env, py312, suffix="-3.12"))


def test_a_broken_model_file_is_an_import_error_naming_it_and_spares_the_other_model(broken: Shell) -> None:
    errors = broken.json("import-errors-broken", steps.IMPORT_ERRORS, check=False)  # exit 1: there are errors
    assert [Path(error["filepath"]).name for error in errors] == ["mlops_model_check.py"], errors
    message = errors[0]["error"]
    assert str(broken.model_file(BROKEN_MODEL)) in message and BROKEN_KEY in message, message
    dag_ids = {dag["dag_id"] for dag in broken.json("dags-broken", steps.DAGS)}
    assert {dag.split("__")[0] for dag in dag_ids} == {steps.MODEL} and len(dag_ids) == 5, dag_ids


def test_the_good_model_runs_its_chain_beside_the_broken_file(broken: Shell, chain: dict[str, Any]) -> None:
    assert_chain_ran(broken.env, chain)


def test_the_trainer_extra_trains_without_airflow(broken: Shell, chain: dict[str, Any]) -> None:
    shell = broken
    help_text = shell.run("trainer-venv", steps.TRAINER_VENV, in_checkout=True).stdout
    assert "usage: python -m mlops.training" in help_text
    venv = Path(shell.env["TRAINER_VENV"])
    probe = f"import importlib.util as u; print([m for m in {json.dumps(NOT_IN_TRAINER)} if u.find_spec(m)])"
    # In the checkout's copy: the deployment folder holds an `airflow/` (AIRFLOW_HOME) that `python -c` would find.
    present = shell.run("trainer-modules", f"\"$TRAINER_VENV/bin/python\" -c '{probe}'", in_checkout=True)
    assert present.stdout.strip() == "[]", f"the trainer venv holds {present.stdout}"
    refused = shell.run(
        "trainer-no-airflow", '"$TRAINER_VENV/bin/python" -c "import airflow"', in_checkout=True, check=False
    )
    assert refused.returncode == 1 and "No module named 'airflow'" in refused.stderr

    trained = shell.run("trainer-train", steps.TRAINER_RUN)  # on the days the chain validated
    result = json.loads(trained.stdout.strip().splitlines()[-1])
    assert result["run_id"] and result["rounds"] > 0 and 0 < result["valid_aucpr"] <= 1, result
    trainer_mb, airflow_mb = megabytes(venv), megabytes(Path(shell.env["VENV"]))
    record(trainer_venv_mb=trainer_mb)
    assert trainer_mb < airflow_mb, (trainer_mb, airflow_mb)
    # docs/installing.md states both sizes: they must stay what a user would measure (within 10 %).
    docs = (PROJECT_ROOT / "docs" / "installing.md").read_text()
    stated = re.search(r"the trainer venv measures ([\d.]+) GB, the Airflow venv ([\d.]+) GB", docs)
    assert stated, "docs/installing.md states the measured venv sizes"
    for documented, measured in zip(map(float, stated.groups()), (trainer_mb, airflow_mb), strict=True):
        assert abs(measured / 1024 - documented) <= 0.1 * documented, (
            f"measured {measured} MiB, docs say {documented} GB"
        )


def test_the_dev_venv_lists_the_plugin_once(tmp_path: Path) -> None:
    """The checkout's embedded setup points the plugins folder at plugins/: the entry point alone registers it."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS", "MLFLOW"))}
    env = embedded_env(base={**base, "AIRFLOW_HOME": str(tmp_path / "airflow"), "MLOPS_HOME": str(tmp_path / "mlops")})
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(PROJECT_ROOT / "plugins")
    airflow = str(Path(sys.executable).with_name("airflow"))
    result = subprocess.run([airflow, "plugins", "-o", "json"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, tail(result)
    line = next(line for line in reversed(result.stdout.splitlines()) if line.startswith("["))
    names = [plugin["name"] for plugin in json.loads(line)]
    assert names.count("mlops") == 1, names
    assert "already registered" not in result.stdout + result.stderr
