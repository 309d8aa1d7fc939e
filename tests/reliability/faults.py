"""What runs in a process the fault suite kills: one step of the platform with a SIGKILL planted at a named point.

The parent starts :func:`child` in a fresh process (multiprocessing's forkserver context: the heavy imports in
:data:`PRELOAD` are paid once per session, each child is a cheap fork of the server). The child plants the
kill point by monkeypatching the function the step calls at that moment (no hook in the product), runs the
step, and dies there by ``SIGKILL``: no ``finally``, no ``except BaseException``, no atexit handler runs, as
when the OOM killer or a node loss ends an Airflow worker. If the step finishes without reaching the point,
the child exits 0 and the parent fails the test (a kill point that is never hit proves nothing).

The same module runs the throwaway MLflow tracking server (:func:`serve_mlflow`) that the services suite
takes away. Top-level imports stay light: pytest imports this module while collecting ``make test``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn

#: Modules the fork server imports once; every child (and the MLflow server) starts with them loaded.
PRELOAD = [
    "tests.reliability.faults",
    "mlflow",
    "mlflow.xgboost",
    "mlflow.server",
    "xgboost",
    "sqlalchemy",
    "dvc.repo",
    "dvc_objects.fs.local",
    "mlops.models",
    "mlops.registry",
    "mlops.scoring",
    "mlops.training.pipeline",
    "mlops.training.train",
    "mlops.validation",
    "mlops.versioning",
]


def die() -> NoReturn:
    """SIGKILL this process: the kernel ends it on the spot."""
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # never reached: SIGKILL cannot be caught
    raise SystemExit(1)


def kill_at(owner: Any, name: str, *, when: Callable[..., bool] = lambda *a, **k: True, after: bool = False) -> None:
    """Replace ``owner.name`` so that the process dies when it is called with arguments ``when`` accepts.

    ``after=False``: dies instead of the call (the operation never happens); ``after=True``: dies right after
    it returned (the operation happened, nothing after it did).
    """
    real = getattr(owner, name)

    def planted(*args: Any, **kwargs: Any) -> Any:
        if not when(*args, **kwargs):
            return real(*args, **kwargs)
        logging.getLogger("faults").warning("SIGKILL at %s.%s (after=%s)", getattr(owner, "__name__", owner), name,
                                            after)  # fmt: skip
        if not after:
            die()
        real(*args, **kwargs)
        die()

    setattr(owner, name, planted)


# -- the steps -----------------------------------------------------------------------------------------------
def _settings(args: dict[str, Any]) -> Any:
    from mlops.config import load_settings

    return load_settings(env=args["env"])


def commit_scores(args: dict[str, Any]) -> None:
    """``batch_scoring``'s commit task: verify the staged parts, swap them into ``scores/dt=D``, marker last."""
    import datetime as dt

    from mlops.data.lake import Lake
    from mlops.models import PinnedModel
    from mlops.scoring import ChunkResult
    from mlops.scoring import commit_scores as commit

    settings = _settings(args)
    results = [ChunkResult.from_dict(result) for result in args["results"]]
    pinned = PinnedModel.from_dict(args["pinned"])
    commit(settings, Lake.from_settings(settings), dt.date.fromisoformat(args["day"]), pinned, results, args["run_id"])


def publish_validated(args: dict[str, Any]) -> None:
    """``data_validation``'s publish tasks: DVC snapshot (add, git commit, push), then ``_VALIDATED.json``."""
    import datetime as dt

    from mlops.data.lake import Lake
    from mlops.validation import mark_validated
    from mlops.versioning import snapshot_partition

    settings = _settings(args)
    lake = Lake.from_settings(settings)
    day = dt.date.fromisoformat(args["day"])
    snapshot = snapshot_partition(settings, lake, day, args["verdict"]["rows"])
    mark_validated(lake, day, args["verdict"], snapshot.to_dict())


def train(args: dict[str, Any]) -> None:
    """``continuous_training``'s train task: ``python -m mlops.training`` does exactly this."""
    from mlops.training.snapshot import TrainingSnapshot
    from mlops.training.train import train as run_training

    run_training(_settings(args), TrainingSnapshot.from_dict(args["snapshot"]), args["trigger"])


def register(args: dict[str, Any]) -> None:
    """``continuous_training``'s register task: a version with lineage and evidence, `challenger` if it passed."""
    from mlops.training.pipeline import Assessment
    from mlops.training.pipeline import register as register_version

    register_version(_settings(args), Assessment.from_dict(args["assessment"]), actor=args["actor"], run=args["run"])


def promote(args: dict[str, Any]) -> None:
    """``continuous_training``'s promote task: compare-and-set `champion` through the ledger."""
    from mlops.training.pipeline import promote as promote_version

    promote_version(_settings(args), args["version"], args["expected"], actor=args["actor"], reason=args["reason"],
                    run=args["run"])  # fmt: skip


STEPS: dict[str, Callable[[dict[str, Any]], None]] = {
    "commit_scores": commit_scores,
    "publish_validated": publish_validated,
    "train": train,
    "register": register,
    "promote": promote,
}


# -- the kill points, per step, in the order the step reaches them --------------------------------------------
Installer = Callable[[dict[str, Any]], None]


def _lake() -> Any:
    from mlops.data.lake import Lake

    return Lake


def _path_ends(suffix: str) -> Callable[..., bool]:
    """Matches ``Lake`` methods whose (last) path argument ends with ``suffix``."""
    return lambda self, *paths, **kwargs: str([p for p in paths if isinstance(p, str)][-1]).endswith(suffix)


def _renamed(side: str, into: bool) -> Callable[..., bool]:
    """Matches ``Lake.rename`` into (or out of) a publisher side folder of kind ``side`` (``new``, ``old``)."""
    return lambda self, src, dst: f".{side}-" in (dst if into else src)


def _commit_points() -> dict[str, Installer]:
    """Between every two operations of the local swap (mlops.data.publish._swap_local)."""
    lake = _lake()
    return {
        "before-the-swap": lambda a: kill_at(lake, "rename", when=_renamed("new", into=True)),
        "staging-moved-beside": lambda a: kill_at(lake, "rename", when=_renamed("new", into=True), after=True),
        "stats-written": lambda a: kill_at(lake, "write_json", when=_path_ends("/_STATS.json"), after=True),
        "old-moved-away": lambda a: kill_at(lake, "rename", when=_renamed("old", into=True), after=True),
        "new-moved-in": lambda a: kill_at(lake, "rename", when=_renamed("new", into=False), after=True),
        "old-removed": lambda a: kill_at(lake, "remove", when=lambda self, path: ".old-" in path, after=True),
        "data-synced": lambda a: kill_at(lake, "sync", after=True),
        "marker-half-written": lambda a: kill_at(lake, "_commit", when=_path_ends("/_SUCCESS")),
        "marker-written": lambda a: kill_at(lake, "touch", when=_path_ends("/_SUCCESS"), after=True),
    }


def _validation_points() -> dict[str, Installer]:
    from dvc.repo import Repo
    from dvc_objects.fs.local import FsspecLocalFileSystem

    def into_remote(args: dict[str, Any]) -> Callable[..., bool]:
        return lambda self, lpath, rpath, *rest, **kwargs: str(rpath).startswith(args["remote"])

    lake = _lake()
    return {
        "dvc-add": lambda a: kill_at(Repo, "add"),
        "committed-to-git": lambda a: kill_at(Repo, "push"),
        "half-pushed": lambda a: kill_at(FsspecLocalFileSystem, "put_file", when=into_remote(a), after=True),
        "pushed": lambda a: kill_at(Repo, "push", after=True),
        "marker-half-written": lambda a: kill_at(lake, "_commit", when=_path_ends("/_VALIDATED.json")),
        "marker-written": lambda a: kill_at(lake, "write_json", when=_path_ends("/_VALIDATED.json"), after=True),
    }


def _training_points() -> dict[str, Installer]:
    import mlflow
    import mlflow.xgboost
    import xgboost

    from mlops.models import Tags

    def model_uri_tag(key: str, value: str) -> bool:  # the last thing the run logs before it ends
        return key == Tags.MODEL_URI

    return {
        "fitting": lambda a: kill_at(xgboost, "train"),
        "artifacts-logged": lambda a: kill_at(mlflow.xgboost, "log_model"),
        "model-logged": lambda a: kill_at(mlflow, "set_tag", when=model_uri_tag, after=True),
    }


def _alias(alias: str) -> Callable[..., bool]:
    return lambda self, name, alias_, version: alias_ == alias


def _registration_points() -> dict[str, Installer]:
    from mlflow import MlflowClient

    from mlops.models import CHALLENGER, Tags

    def gates_tag(self: Any, name: str, version: str, key: str, value: str) -> bool:
        return key == Tags.GATES_PASSED

    set_alias = "set_registered_model_alias"
    return {
        "before-the-version": lambda a: kill_at(MlflowClient, "create_model_version"),
        "version-created": lambda a: kill_at(MlflowClient, "create_model_version", after=True),
        "gates-tag-written": lambda a: kill_at(MlflowClient, "set_model_version_tag", when=gates_tag, after=True),
        "challenger-set-in-mlflow": lambda a: kill_at(MlflowClient, set_alias, when=_alias(CHALLENGER), after=True),
    }


def _promotion_points() -> dict[str, Installer]:
    from mlflow import MlflowClient

    from mlops.ledger import Ledger
    from mlops.models import CHAMPION
    from mlops.registry import Registry

    set_alias = "set_registered_model_alias"
    return {
        "ledger-locked": lambda a: kill_at(Ledger, "_insert_head_if_missing"),
        "ledger-written": lambda a: kill_at(MlflowClient, set_alias, when=_alias(CHAMPION)),
        "mlflow-moved": lambda a: kill_at(MlflowClient, set_alias, when=_alias(CHAMPION), after=True),
        "committed": lambda a: kill_at(Registry, "_tag_promoted"),
    }


_INSTALLERS: dict[str, Callable[[], dict[str, Installer]]] = {
    "commit_scores": _commit_points,
    "publish_validated": _validation_points,
    "train": _training_points,
    "register": _registration_points,
    "promote": _promotion_points,
}


#: step -> the names of its kill points, in the order the step reaches them (the tests parametrize on these).
POINTS: dict[str, tuple[str, ...]] = {
    "commit_scores": (
        "before-the-swap",
        "staging-moved-beside",
        "stats-written",
        "old-moved-away",
        "new-moved-in",
        "old-removed",
        "data-synced",
        "marker-half-written",
        "marker-written",
    ),
    "publish_validated": (
        "dvc-add",
        "committed-to-git",
        "half-pushed",
        "pushed",
        "marker-half-written",
        "marker-written",
    ),
    "train": ("fitting", "artifacts-logged", "model-logged"),
    "register": ("before-the-version", "version-created", "gates-tag-written", "challenger-set-in-mlflow"),
    "promote": ("ledger-locked", "ledger-written", "mlflow-moved", "committed"),
}


def _log_to(path: str) -> None:
    """Send this process's stdout and stderr (and logging) to ``path``: the parent shows it when a case fails."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip


def child(step: str, point: str, args: dict[str, Any], log_path: str) -> None:
    """Plant ``point``, run ``step``; exits 0 only if the point was never reached (the parent then fails)."""
    _log_to(log_path)
    installers = _INSTALLERS[step]()
    assert set(installers) == set(POINTS[step]), f"kill points of {step} out of date"
    installers[point](args)
    STEPS[step](args)
    logging.getLogger("faults").error("%s finished without reaching kill point %r", step, point)


# -- the MLflow tracking server that the services suite takes away ---------------------------------------------
def serve_mlflow(backend_uri: str, artifact_root: str, port: int, log_path: str) -> None:
    """MLflow's tracking server (its Flask app, no gunicorn/uvicorn) on 127.0.0.1:``port`` until killed."""
    _log_to(log_path)
    os.chdir(os.path.dirname(log_path))  # anything MLflow would write into the cwd lands beside the log
    os.environ.update({
        "_MLFLOW_SERVER_FILE_STORE": backend_uri,
        "_MLFLOW_SERVER_REGISTRY_STORE": backend_uri,
        "_MLFLOW_SERVER_ARTIFACT_ROOT": artifact_root,
        "MLFLOW_TRACKING_URI": backend_uri,  # the registry resolves ``models:/m-...`` sources through it
    })  # fmt: skip
    from mlflow.server import app
    from werkzeug.serving import make_server

    make_server("127.0.0.1", port, app, threaded=True).serve_forever()
