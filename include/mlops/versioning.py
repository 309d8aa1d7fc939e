"""DVC snapshots of validated partitions in a data-registry repo (git + DVC) pushed to a DVC remote.

Each validated day becomes ``data/<dataset>/dt=D`` tracked by ``data/<dataset>/dt=D.dvc``; the git
commit that last changed that file is the day's *revision*. Re-snapshotting unchanged data commits
nothing and returns the same revision, so re-running a date is idempotent. A fresh clone of the
registry can ``dvc pull`` any revision from the remote; ``dvc.api.open(path, repo, rev)`` reads one.

Git operations go through the ``git`` command (explicit, no hidden state); DVC through its Python API.

Embedded default: the registry is one local repo. In production (``versioning.registry_remote``) the
truth is a git remote: a worker's local repo is only a working copy (cloned on first use, reset to the
remote before each snapshot), every snapshot is pushed (data to the DVC remote first, then the commit),
and readers -- other workers, the training pod, monitoring -- open the remote URL at a revision
(:func:`open_registry`). Writers are serialised by the platform's database lock (:func:`mlops.ledger.exclusive`:
a PostgreSQL advisory lock across hosts, a file lock with the embedded SQLite ledger).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.errors import InfrastructureError, InputError
from mlops.ledger import exclusive
from mlops.redact import redact_text
from mlops.secret_rules import AWS_ACCESS_KEY_ID, MASK, SECRET_PARAMETER, mask

if TYPE_CHECKING:
    from mlops.config import Settings
    from mlops.data.lake import Lake

log = logging.getLogger(__name__)
REMOTE_NAME = "storage"
GIT_IDENTITY = {"user.name": "mlops-data-registry", "user.email": "mlops@localhost"}


@dataclass(frozen=True)
class Snapshot:
    revision: str
    path: str  # inside the registry repo
    registry: str
    remote: str
    md5: str  # DVC's directory hash: identifies the content whatever the revision
    files: int
    #: file name -> size and md5 as DVC hashed them: what the revision holds (``mark_validated`` compares it).
    manifest: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {repo}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


def _remote_main(remote: str) -> str | None:
    """The commit of the remote's ``main`` (``None`` while nothing was pushed); an unreadable remote is retried."""
    result = subprocess.run(["git", "ls-remote", "--heads", remote, "main"], capture_output=True, text=True)
    if result.returncode != 0:
        raise remote_failure("data registry remote", remote, "read (git ls-remote)", _git_cause(result.stderr))
    return result.stdout.split()[0] if result.stdout.strip() else None


def remote_failure(kind: str, remote: str, operation: str, cause: str) -> InfrastructureError:
    """The one line an unreachable remote costs the task log and the CLI: which remote, doing what, and why.

    Raised ``from None`` by the callers: the library's traceback (dozens of lines of DVC, fsspec, botocore)
    says nothing the cause does not, and it is a retryable :class:`InfrastructureError`, not a bug.
    """
    return InfrastructureError(f"{kind} {redact_text(remote)}: {operation} failed: {redact_text(cause)}")


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else ""


def _git_cause(stderr: str) -> str:
    """Git's own reason (its ``fatal:`` / ``error:`` line), not its ``To <url>`` preamble or ``hint:`` lines."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    reasons = [line for line in lines if line.startswith(("fatal:", "error:", "remote:", "!"))]
    return (reasons or lines or ["git gave no reason"])[0]


def _git_remote(repo: Path, remote: str, operation: str, *args: str) -> None:
    """A git command that talks to the registry's remote: a failure is one retryable line naming it."""
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if result.returncode != 0:
        raise remote_failure("data registry remote", remote, operation, _git_cause(result.stderr or result.stdout))


#: The loggers DVC reports through (its transfer failures come with a traceback each).
DVC_LOGGERS = ("dvc", "dvc_data", "dvc_objects")


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _dvc_quietly() -> Iterator[_Captured]:
    """Hold DVC's warnings and errors back while a call runs: on success they are logged as one line each; on
    failure the caller turns the first into the cause of its one-line error (no per-file tracebacks)."""
    captured = _Captured()
    saved = [(logger, logger.handlers, logger.propagate) for logger in map(logging.getLogger, DVC_LOGGERS)]
    for logger, _, _ in saved:
        logger.handlers, logger.propagate = [captured], False
    try:
        yield captured
    finally:
        for logger, handlers, propagate in saved:
            logger.handlers, logger.propagate = handlers, propagate
    for record in captured.records:
        log.warning("DVC: %s", _first_line(record.getMessage()))


def _dvc_cause(exc: BaseException, captured: _Captured) -> str:
    """The exception's first line; with DVC's summary ("N files failed to upload"), the first file's reason too."""
    cause = f"{type(exc).__name__}: {_first_line(str(exc)) or 'no message'}"
    reasons = [record.exc_info[1] for record in captured.records if record.exc_info and record.exc_info[1]]
    if reasons and reasons[0] is not exc:
        cause += f" (first: {type(reasons[0]).__name__}: {_first_line(str(reasons[0]))})"
    captured.records.clear()  # reported in the error: not logged again
    return cause


def registry_head(settings: Settings) -> str:
    """The registry's newest commit as every worker sees it: the remote's ``main``, else the local HEAD."""
    remote = settings.versioning.registry_remote
    if remote is None:
        return _git(settings.dvc_registry_path, "rev-parse", "HEAD")
    head = _remote_main(remote)
    if head is None:
        raise InfrastructureError(f"data registry remote {redact_text(remote)} has no main branch to read: "
                                  "no snapshot pushed yet")  # fmt: skip
    return head


def open_registry(url: str, revision: str) -> Any:
    """A read-only ``DVCFileSystem`` of the registry at ``url`` (git URL or local path) pinned to ``revision``.

    Data comes from the DVC remote named in the registry's committed config; credentials from the
    reader's environment (the pod's Secret), never from the URL.
    """
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    from dvc.fs import DVCFileSystem

    return DVCFileSystem(repo=url, rev=revision)


def _sync_working_copy(repo: Path, remote: str) -> None:
    """Make the local repo a working copy of the remote: cloned when missing, reset to the remote's ``main``.

    A local commit the remote never received (a snapshot killed before its push) is dropped: no reader
    ever saw it, and the re-run snapshot commits that day again.
    """
    pushed = _remote_main(remote) is not None
    if not (repo / ".git").exists():
        repo.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(repo, ignore_errors=True)
        if pushed:
            _git_remote(repo.parent, remote, "clone", "clone", "-q", "--branch", "main", remote, repo.name)
            log.info("cloned data registry %s into %s", redact_text(remote), repo)
        else:
            repo.mkdir()
            _git(repo, "init", "-q", "-b", "main")
            log.info("data registry remote %s is empty: starting it from %s", redact_text(remote), repo)
    if _git(repo, "remote"):
        _git(repo, "remote", "set-url", "origin", remote)
    else:
        _git(repo, "remote", "add", "origin", remote)
    if pushed:
        _git_remote(repo, remote, "pull (git fetch)", "fetch", "-q", "origin", "main")
        _git(repo, "reset", "-q", "--hard", "origin/main")


def _push(settings: Settings, repo: Path) -> None:
    remote = settings.versioning.registry_remote
    if remote is not None:
        _git_remote(repo, remote, "push", "push", "-q", "origin", "main")
        log.info("pushed data registry to %s", redact_text(remote))


#: Schemes whose URL user part names an account (``ssh://deploy@host``), not a secret; elsewhere any user part is one.
ACCOUNT_SCHEMES = ("ssh", "sftp")


def refuse_credentials(url: str, setting: str = "versioning.remote_url") -> None:
    """Refuse a DVC remote URL that carries a secret: it would be committed in ``.dvc/config`` and pushed to the
    registry every pod clones. Credentials go to the environment (``AWS_*`` for s3://) or DVC's
    ``.dvc/config.local`` on the worker, which git ignores (DVC's own ``.dvc/.gitignore``).
    """
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        password, user = parts.password, parts.username
    except ValueError:  # an unparsable port or netloc: judge the text alone
        password, user = None, None
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    secret_user = bool(user) and scheme not in ACCOUNT_SCHEMES
    if not (password or secret_user or SECRET_PARAMETER.search(url) or AWS_ACCESS_KEY_ID.search(url)):
        return
    shown = url
    if "@" in url.split("://", 1)[-1].split("/", 1)[0]:  # the whole user part: a user name may be a token
        head, rest = url.split("://", 1)
        shown = f"{head}://{MASK}@{rest.split('@', 1)[1]}"
    raise InputError(
        f"{setting} {mask(shown)} carries credentials: it would be committed to the data registry's .dvc/config and "
        f"pushed to every clone. Remove them from the URL; give DVC its credentials through the environment "
        f"(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for s3://) or on the worker with "
        f"`dvc remote modify --local {REMOTE_NAME} password ...` (.dvc/config.local, never committed)"
    )


def _remote_settings(settings: Settings) -> dict[str, str]:
    """The DVC remote as committed in ``.dvc/config``: URL, endpoint and region only, never a credential."""
    remote = settings.dvc_remote_url  # refused by ensure_registry if it carries credentials (refuse_credentials)
    config = {"url": remote}
    if remote.startswith("s3://"):
        options = settings.s3_storage_options()["client_kwargs"]
        if "endpoint_url" in options:
            config["endpointurl"] = options["endpoint_url"]
        config["region"] = options["region_name"]
    return config


def ensure_registry(settings: Settings) -> Path:
    """Create the registry (git init, dvc init, default remote) once; keep its remote in sync with config."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    # DVC's INFO messages ("Initialized DVC repository", git hints) go to stdout and would corrupt
    # `mlops --json`; our own log lines say what happens.
    logging.getLogger("dvc").setLevel(logging.WARNING)
    from dvc.repo import Repo

    refuse_credentials(settings.dvc_remote_url)  # before anything is written, cloned or pushed
    repo = settings.dvc_registry_path
    if settings.versioning.registry_remote is not None:
        _sync_working_copy(repo, settings.versioning.registry_remote)
    if not (repo / ".dvc").is_dir():
        repo.mkdir(parents=True, exist_ok=True)
        if not (repo / ".git").exists():
            _git(repo, "init", "-q", "-b", "main")
        for key, value in GIT_IDENTITY.items():
            _git(repo, "config", key, value)
        Repo.init(str(repo))
        # Data files are DVC's business: git must never pick them up, even after an interrupted snapshot.
        (repo / ".gitignore").write_text("*.parquet\n*.incoming/\n")
        (repo / "README.md").write_text(
            f"# Data registry for {settings.dataset.name}\n\nValidated lake partitions, one `.dvc` file per day.\n"
            "`dvc pull data/<dataset>/dt=YYYY-MM-DD.dvc` fetches a day from the remote.\n"
        )
    with Repo(str(repo)) as dvc_repo, dvc_repo.config.edit() as config:
        config["core"]["remote"] = REMOTE_NAME
        config["core"]["analytics"] = False
        config.setdefault("remote", {})[REMOTE_NAME] = _remote_settings(settings)
    _git(repo, "add", "-A")
    if _git(repo, "status", "--porcelain"):
        _git(repo, "commit", "-q", "-m", "configure data registry")
    return repo


def _content_md5(dvc_file: Path) -> str:
    import yaml

    out = yaml.safe_load(dvc_file.read_text())["outs"][0]
    return str(out.get("md5", ""))


def registry_folder(dataset: str, day: dt.date | str) -> str:
    """``data/<dataset>/dt=D``: where a validated day lives in the data registry (not in the lake)."""
    return f"data/{dataset}/dt={day if isinstance(day, str) else day.isoformat()}"


def _dvc_manifest(stage: Any) -> dict[str, dict[str, Any]]:
    """The files of a just-added folder as DVC hashed them (its ``.dir`` object): name -> size, md5."""
    tree = stage.outs[0].get_obj()
    return {"/".join(key): {"size": meta.size, "md5": oid.value} for key, meta, oid in tree}


def snapshot_partition(settings: Settings, lake: Lake, day: dt.date, rows: int,
                       manifest: dict[str, dict[str, Any]] | None = None) -> Snapshot:  # fmt: skip
    """Version ``raw/dt=D``'s parquet files; returns the git revision that holds them.

    ``manifest`` is the verdict's (``Verdict.manifest``): the files are hashed as they are copied into the
    registry and any file added, changed or removed since the verdict refuses the snapshot (:class:`InputError`)
    before anything is committed. Without it, the snapshot still records DVC's own hashes (``Snapshot.manifest``)
    and ``mark_validated`` refuses a mismatch.
    """
    from dvc.repo import Repo

    from mlops.data.lake import refuse_changes

    repo = settings.dvc_registry_path
    relative = registry_folder(settings.dataset.name, day)
    with exclusive(settings.ledger_uri, "data-registry", repo.parent):
        ensure_registry(settings)
        target = repo / relative
        staging = target.with_name(target.name + ".incoming")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        files = lake.data_files(lake.partition("raw", day))
        copied = {}
        for path in files:
            name = path.rsplit("/", 1)[-1]
            copied[name] = lake.digest(path, copy_to=str(staging / name))
        if manifest is not None:
            try:
                refuse_changes(lake, day, manifest, copied, "nothing was snapshot in the data registry")
            except InputError:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        with Repo(str(repo)) as dvc_repo:
            (stage,) = dvc_repo.add(str(target))
            versioned = _dvc_manifest(stage)
            dvc_file = repo / f"{relative}.dvc"
            _git(repo, "add", f"{relative}.dvc", str(Path(relative).parent / ".gitignore"))
            if _git(repo, "status", "--porcelain", "--", f"{relative}.dvc"):
                _git(repo, "commit", "-q", "-m", f"snapshot {settings.dataset.name} dt={day} ({rows} rows)")
                log.info("committed snapshot of dt=%s", day)
            else:
                log.info("dt=%s unchanged since its last snapshot: reusing its revision", day)
            with _dvc_quietly() as captured:
                try:
                    pushed = dvc_repo.push(targets=[str(target)])
                except Exception as exc:  # whatever DVC, fsspec or the cloud SDK raised: the remote failed
                    cause = _dvc_cause(exc, captured)
                    raise remote_failure("DVC remote", settings.dvc_remote_url, "push", cause) from None
            log.info("pushed %d file(s) of dt=%s to DVC remote %s", pushed, day, redact_text(settings.dvc_remote_url))
        _push(settings, repo)  # after the data: a revision readers can see always has its files in the remote
        revision = _git(repo, "log", "-1", "--format=%H", "--", f"{relative}.dvc")
        return Snapshot(
            revision=revision,
            path=relative,
            registry=redact_text(settings.registry_url),
            remote=redact_text(settings.dvc_remote_url),
            md5=_content_md5(dvc_file),
            files=len(files),
            manifest=versioned,
        )
