"""The lake: day partitions on local disk or S3, behind one small API that owns every path.

Layout (relative to the lake root; ``D`` is an ISO date, ``<run>`` a run id made path-safe by
:func:`safe_segment`). No other module writes a lake path literal: they ask :class:`Lake`.

==============================================  ==============================================================
path                                            what
==============================================  ==============================================================
``raw/dt=D/``                                   landed data; complete when ``_SUCCESS`` exists
``raw/dt=D/_VALIDATED.json``                    the day passed its contract; names each file it validated
``labels/dt=D/``                                delayed labels of day D (``_SUCCESS`` last)
``quarantine/dt=D/``                            the latest delivery of a day that broke its contract, ``reason.json``
``quarantine/dt=D/_earlier/<n>/``               earlier quarantined deliveries of the day, each with its reason
``scores/dt=D/``                                champion scores, ``_STATS.json``, ``_SUCCESS`` last
``scores/dt=D/_staging/<run>/``                 parts of a scoring run before its commit
``scores/shadow/dt=D/``                         champion vs challenger on a sample (``_SUCCESS`` last)
``<area>/.dt=D.<kind>-<token>/``                publisher side folders (staging, swap); never listed
``reports/drift/<dataset>/dt=D/<name>``         a day's drift report (``report.html``)
``reports/drift/<dataset>/history/dt=D.json``   a day's drift history entry
``reports/data_docs/``                          the Great Expectations Data Docs site (GX's own layout)
==============================================  ==============================================================

Reports are namespaced by dataset so that several datasets can share a lake; the Data Docs site is
one GX site per lake whose pages are keyed by suite name, which carries the contract's name.
Names starting with ``.`` or ``_`` are never data: :meth:`Lake.days` and :meth:`Lake.data_files` skip them.

What a verdict validated is a *manifest*: each data file's name, size, md5 (DVC's own file hash, so the snapshot
compares with DVC) and sha256 (what collisions cannot forge), of the bytes validation read
(:func:`file_digest`). Downstream steps compare the files they read with it (:func:`manifest_changes`): a file
added, changed or removed since the verdict is a new delivery, never part of the validated day.

fsspec gives one code path for both backends (s3fs talks to S3, MinIO or moto over HTTP).

A failure to reach a path is never an answer about it: fsspec's ``exists``/``isdir`` turn any error into False,
so one EIO on a partition's ``stat`` read as "no parquet files" and quarantined a good day. Every query and
file operation here goes through :meth:`Lake._io`: "not there" stays :class:`FileNotFoundError` (or False,
``[]``), any other :class:`OSError` raises :class:`LakeIOError`, an infrastructure error that is retried.

Durability on local disk: a write returns only once the file and its folder entry are fsynced
(:meth:`Lake._commit`), and :meth:`Lake.sync` flushes a whole published partition before its marker is
written, so a power cut never leaves a marker in front of data that did not reach the disk. On S3 a PUT is
durable and atomic once it returns; there is nothing to flush.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import fsspec

from mlops.errors import InfrastructureError, InputError

if TYPE_CHECKING:
    import pyarrow as pa

    from mlops.config import Settings

log = logging.getLogger(__name__)

SUCCESS = "_SUCCESS"
VALIDATED = "_VALIDATED.json"
REASON = "reason.json"
STATS = "_STATS.json"
#: Marker files a partition may carry; readers trust a partition by these, so they are written last.
MARKERS = (SUCCESS, VALIDATED, REASON, STATS)
STAGING = "_staging"
#: Inside ``quarantine/dt=D``: earlier deliveries of the day, one numbered folder each (``_earlier/1`` the first).
EARLIER = "_earlier"
#: Hash algorithms of a manifest entry (besides ``size``); md5 is DVC's, sha256 the one an attacker cannot collide.
DIGESTS = ("md5", "sha256")
READ_BLOCK = 8 << 20
#: Day-partitioned areas -> their folder under the lake root (partitions are ``<folder>/dt=D``).
AREA_DIRS = {
    "raw": "raw",
    "labels": "labels",
    "quarantine": "quarantine",
    "scores": "scores",
    "shadow": "scores/shadow",
}
AREAS = tuple(AREA_DIRS)
REPORTS = "reports"
DATA_DOCS = "data_docs"
DRIFT = "drift"
HISTORY = "history"
#: Errors that answer a question about the path (absent, already there, of the other kind): not a failing lake.
ANSWERS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError)


class PartitionChanged(InputError):
    """A day's files are not the ones its verdict validated (added, changed, removed): a new delivery."""


class LakeIOError(OSError, InfrastructureError):
    """The disk, S3 or the network failed on a lake path: retried, never read as "absent" or as bad data.

    Still an :class:`OSError` with the original errno, for callers that handle those.
    """


def safe_segment(run_id: str) -> str:
    """A run id usable as a path segment (Airflow ids carry ':' and '+'); distinct ids stay distinct."""
    if re.fullmatch(r"[A-Za-z0-9._-]+", run_id) and not run_id.startswith("."):
        return run_id
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).lstrip(".")
    return f"{cleaned}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"


def _raise(error: OSError) -> None:
    """``os.walk``'s ``onerror``: a folder that cannot be listed fails the walk instead of being skipped."""
    raise error


def _fsync(path: str, *, directory: bool = False) -> None:
    """Flush one local file, or a folder's entries (a rename is durable only once its folder is), to disk."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_digest(data: bytes) -> dict[str, Any]:
    """A manifest entry of bytes already read: ``{"size", "md5", "sha256"}``."""
    return {"size": len(data), **{name: hashlib.new(name, data).hexdigest() for name in DIGESTS}}


def manifest_changes(validated: dict[str, dict[str, Any]], found: dict[str, dict[str, Any]]) -> list[str]:
    """What differs between the validated manifest and the files found: ``<name> was added|removed|changed (..)``.

    An entry is compared on ``size`` and every hash both sides have; sharing no hash is a change (never a pass).
    """
    changes = [f"{name} was added after validation" for name in sorted(set(found) - set(validated))]
    changes += [f"{name} was removed after validation" for name in sorted(set(validated) - set(found))]
    for name in sorted(set(found) & set(validated)):
        old, new = (entry if isinstance(entry, dict) else {} for entry in (validated[name], found[name]))
        hashes = [key for key in DIGESTS if key in old and key in new]
        if old.get("size") != new.get("size"):
            changes.append(f"{name} changed after validation (size {old.get('size')} -> {new.get('size')} bytes)")
        elif not hashes or any(old[key] != new[key] for key in hashes):
            changes.append(f"{name} changed after validation (same size, other content)")
    return changes


def changed_message(lake: Lake, day: dt.date, changes: list[str], consequence: str) -> str:
    """The one line a refused day shows: the day, the first change (and how many more), and what to do."""
    more = f" (+{len(changes) - 1} more change(s))" if len(changes) > 1 else ""
    return (
        f"dt={day.isoformat()}: {lake.url(lake.partition('raw', day))}/{changes[0]}{more}; {consequence}. A file "
        f"added or changed after its day's verdict is a new delivery that must be validated: land the day again "
        f"(data, then {SUCCESS}) and run `mlops validate --date {day.isoformat()}`"
    )


def refuse_changes(lake: Lake, day: dt.date, validated: dict[str, dict[str, Any]], found: dict[str, dict[str, Any]],
                   consequence: str, error: type[InputError] = PartitionChanged) -> None:  # fmt: skip
    """Raise ``error`` (:func:`changed_message`) if ``found`` is not the ``validated`` manifest."""
    changes = manifest_changes(validated, found)
    if changes:
        raise error(changed_message(lake, day, changes, consequence))


def _segment(value: str, what: str) -> str:
    """Reject a name that would change the layout (a '/', a hidden name, or nothing)."""
    if not value or "/" in value or value.startswith((".", "_")):
        raise ValueError(f"{what} {value!r} cannot be a lake path segment")
    return value


class Lake:
    """Paths and atomic file operations on the lake root."""

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        self.uri = uri.rstrip("/")
        self.is_s3 = self.uri.startswith("s3://")
        self.fs, self.root = fsspec.core.url_to_fs(self.uri, **(storage_options or {}))
        self.root = self.root.rstrip("/")
        if not self.is_s3:
            with self._io("creating", self.root):
                self.fs.makedirs(self.root, exist_ok=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> Lake:
        return cls(settings.lake_uri, settings.s3_storage_options() if settings.lake_is_s3 else None)

    # -- paths (the layout table of the module docstring) ---------------------------------------
    def area(self, area: str) -> str:
        """The folder that holds ``area``'s day partitions."""
        if area not in AREA_DIRS:
            raise ValueError(f"unknown lake area {area!r}; expected one of {AREAS}")
        return f"{self.root}/{AREA_DIRS[area]}"

    def partition(self, area: str, day: dt.date) -> str:
        return f"{self.area(area)}/dt={day.isoformat()}"

    def marker(self, area: str, day: dt.date, name: str) -> str:
        """``<partition>/<name>`` for one of :data:`MARKERS`."""
        if name not in MARKERS:
            raise ValueError(f"unknown marker {name!r}; expected one of {MARKERS}")
        return f"{self.partition(area, day)}/{name}"

    def earlier(self, partition: str, number: int | None = None) -> str:
        """``<partition>/_earlier`` (earlier deliveries of a quarantined day), or its ``<number>``-th (1: the first)."""
        folder = f"{partition}/{EARLIER}"
        return folder if number is None else f"{folder}/{int(number)}"

    def earlier_numbers(self, partition: str) -> list[int]:
        """The numbers of the earlier deliveries kept in ``partition``, oldest first."""
        leaves = (path.rstrip("/").rsplit("/", 1)[-1] for path in self.listdir(self.earlier(partition)))
        return sorted(int(leaf) for leaf in leaves if leaf.isdigit())

    def staging(self, area: str, day: dt.date, run_id: str) -> str:
        """``<partition>/_staging/<run>``: where the tasks of one run stage parts before the commit."""
        return f"{self.partition(area, day)}/{STAGING}/{safe_segment(run_id)}"

    def side(self, final: str, kind: str, token: str) -> str:
        """``<parent>/.<leaf>.<kind>-<token>``: a publisher folder beside ``final``, hidden by its '.'."""
        return f"{self.side_prefix(final)}{_segment(kind, 'side folder kind')}-{safe_segment(token)}"

    @staticmethod
    def side_prefix(final: str) -> str:
        """The common prefix of every side folder of ``final`` (to find those of killed runs)."""
        parent, leaf = final.rsplit("/", 1)
        return f"{parent}/.{leaf}."

    def report(self, kind: str, day: dt.date, name: str, dataset: str) -> str:
        """``reports/<kind>/<dataset>/dt=D/<name>``, e.g. ``reports/drift/cards/dt=D/report.html``."""
        if kind == DATA_DOCS:
            raise ValueError("Data Docs keep GX's site layout: use Lake.data_docs()")
        base = f"{self.root}/{REPORTS}/{_segment(kind, 'report kind')}/{_segment(dataset, 'dataset')}"
        return f"{base}/dt={day.isoformat()}/{_segment(name, 'report name')}"

    def drift_history_dir(self, dataset: str) -> str:
        """``reports/drift/<dataset>/history``: one JSON file per day."""
        return f"{self.root}/{REPORTS}/{DRIFT}/{_segment(dataset, 'dataset')}/{HISTORY}"

    def drift_history(self, dataset: str, day: dt.date) -> str:
        """``reports/drift/<dataset>/history/dt=D.json``: re-running a day replaces its entry."""
        return f"{self.drift_history_dir(dataset)}/dt={day.isoformat()}.json"

    def data_docs(self, page: str = "") -> str:
        """``reports/data_docs`` (the GX site root), or a page of it given relative to the root."""
        root = f"{self.root}/{REPORTS}/{DATA_DOCS}"
        return f"{root}/{page.strip('/')}" if page.strip("/") else root

    def url(self, path: str) -> str:
        """The full URI of a path, for messages and markers (``s3://b/k`` or ``/abs/path``)."""
        return f"s3://{path}" if self.is_s3 else path

    def relative(self, path: str) -> str:
        return path[len(self.root) + 1 :] if path.startswith(self.root + "/") else path

    # -- queries -----------------------------------------------------------------------------
    @contextmanager
    def _io(self, what: str, path: str) -> Iterator[None]:
        """Run file operations on ``path``: an I/O failure (EIO, reset, timeout) raises :class:`LakeIOError`."""
        try:
            yield
        except (*ANSWERS, LakeIOError):
            raise
        except OSError as exc:
            detail = f"{what} {self.url(path)} failed: {exc.strerror or exc}"
            raise (LakeIOError(detail) if exc.errno is None else LakeIOError(exc.errno, detail)) from exc

    def info(self, path: str) -> dict[str, Any] | None:
        """fsspec's ``info`` of ``path``, None when it does not exist; any other failure raises :class:`LakeIOError`."""
        with self._io("checking", path):
            try:
                return self.fs.info(path)
            except (FileNotFoundError, NotADirectoryError):
                return None

    def exists(self, path: str) -> bool:
        """Whether ``path`` exists; unlike ``fs.exists``, an I/O error raises instead of answering False."""
        return self.info(path) is not None

    def isdir(self, path: str) -> bool:
        """Whether ``path`` is a folder (a prefix on S3); unlike ``fs.isdir``, an I/O error raises."""
        found = self.info(path)
        return found is not None and found["type"] == "directory"

    def listdir(self, folder: str) -> list[str]:
        """Paths in ``folder``, ``[]`` when it does not exist; an I/O error raises :class:`LakeIOError`."""
        with self._io("listing", folder):
            try:
                return list(self.fs.ls(folder, detail=False))
            except (FileNotFoundError, NotADirectoryError):
                return []

    def data_files(self, partition: str) -> list[str]:
        """Parquet files of a partition in a stable order (markers and hidden files excluded)."""
        names = self.listdir(partition)
        return sorted(n for n in names if n.endswith(".parquet") and not n.rsplit("/", 1)[-1].startswith((".", "_")))

    def digest(self, path: str, algorithms: tuple[str, ...] = DIGESTS, copy_to: str | None = None) -> dict[str, Any]:
        """``{"size", <algorithm>: hex}`` of a lake file, streamed in blocks; ``copy_to`` also writes a local copy.

        One read gives the copy and the hashes of exactly the copied bytes.
        """
        hashes = {name: hashlib.new(name) for name in algorithms}
        size = 0
        with self._io("reading", path), self.fs.open(path, "rb") as handle:
            target = open(copy_to, "wb") if copy_to else None  # noqa: SIM115 - closed below
            try:
                while block := handle.read(READ_BLOCK):
                    size += len(block)
                    for state in hashes.values():
                        state.update(block)
                    if target is not None:
                        target.write(block)
            finally:
                if target is not None:
                    target.close()
        return {"size": size, **{name: state.hexdigest() for name, state in hashes.items()}}

    def manifest(self, partition: str) -> dict[str, dict[str, Any]]:
        """Name -> :meth:`digest` of each data file of ``partition`` as it is now (what a verdict records)."""
        return {path.rsplit("/", 1)[-1]: self.digest(path) for path in self.data_files(partition)}

    def days(self, area: str, marker: str | None = None) -> list[dt.date]:
        """Dates that have a partition in ``area`` (and ``marker`` inside it when given), sorted."""
        found = []
        for name in self.listdir(self.area(area)):
            leaf = name.rstrip("/").rsplit("/", 1)[-1]
            if not leaf.startswith("dt="):
                continue
            day = dt.date.fromisoformat(leaf[3:])
            if marker is None or self.exists(f"{name.rstrip('/')}/{marker}"):
                found.append(day)
        return sorted(found)

    # -- reads and writes --------------------------------------------------------------------
    def read_json(self, path: str) -> dict[str, Any]:
        with self._io("reading", path), self.fs.open(path, "r") as handle:
            return json.load(handle)

    def write_json(self, path: str, payload: dict[str, Any]) -> None:
        """Write through a temporary name then rename (a single PUT on S3), so readers never see half a file."""
        data = json.dumps(payload, indent=2, sort_keys=True, default=str)
        self._atomic_write(path, data.encode())

    def touch(self, path: str) -> None:
        self._atomic_write(path, b"")

    def write_parquet(self, table: pa.Table, path: str, row_group_size: int = 131_072) -> None:
        import pyarrow.parquet as pq

        with self._io("writing", path):
            tmp = self._tmp_name(path)
            with self.fs.open(tmp, "wb") as handle:
                pq.write_table(table, handle, row_group_size=row_group_size, compression="snappy")
            self._commit(tmp, path)

    def read_partition(self, partition: str) -> pa.Table:
        """All parquet files of a partition as one table (no hive-partition columns are added).

        Files of one partition may differ as a producer's deliveries do (a label feed in two files, one with an int32
        id, one with an extra column): they are joined with widened types and missing columns as nulls. Raw days
        are held to one schema by validation (``consistent_schema``), which reads its files itself.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        files = self.data_files(partition)
        if not files:
            raise FileNotFoundError(f"{self.url(partition)} has no parquet files")
        tables = []
        for path in files:
            with self._io("reading", path), self.fs.open(path, "rb") as handle:
                tables.append(pq.read_table(handle))
        if len(tables) == 1:
            return tables[0]
        return pa.concat_tables(tables, promote_options="permissive").unify_dictionaries()

    def upload(self, local_path: str, path: str) -> None:
        """Copy a local file (a rendered report) into the lake; readers see the old file or the new one."""
        with self._io("uploading to", path):
            tmp = self._tmp_name(path)
            self.fs.put_file(local_path, tmp)
            self._commit(tmp, path)

    def remove(self, path: str) -> None:
        if self.exists(path):
            with self._io("removing", path):
                self.fs.rm(path, recursive=True)

    def rename(self, src: str, dst: str) -> None:
        """Atomically rename a local file or folder; fails (never nests) when ``dst`` is a non-empty folder.

        Local disk only: S3 has no rename, the publisher copies there instead.
        """
        if self.is_s3:
            raise NotImplementedError(f"S3 has no atomic rename ({self.url(src)} -> {self.url(dst)})")
        with self._io(f"renaming {self.url(src)} to", dst):
            os.rename(src, dst)

    def sync(self, path: str) -> None:
        """Flush a local file or folder tree to disk: every file, every folder bottom-up, then the parent.

        Publishers call it before writing a marker, so the marker never survives a crash the data did not.
        No-op on S3: an object is durable once its PUT returned.
        """
        if self.is_s3:
            return
        is_folder = self.isdir(path)
        with self._io("flushing", path):
            if is_folder:
                for folder, _subfolders, files in os.walk(path, topdown=False, onerror=_raise):
                    for name in files:
                        _fsync(os.path.join(folder, name))
                    _fsync(folder, directory=True)
            else:
                _fsync(path)
            _fsync(os.path.dirname(path.rstrip("/")), directory=True)

    def move(self, src: str, dst: str) -> None:
        """Move a whole partition (or folder), replacing ``dst``; the caller keeps what ``dst`` held if it must."""
        self.remove(dst)
        with self._io(f"moving {self.url(src)} to", dst):
            if self.is_s3:
                self.fs.copy(src, dst, recursive=True)
                self.fs.rm(src, recursive=True)
            else:
                self.fs.makedirs(dst.rsplit("/", 1)[0], exist_ok=True)
                self.fs.mv(src, dst, recursive=True)

    def _tmp_name(self, path: str) -> str:
        head, leaf = path.rsplit("/", 1)
        if self.is_s3:  # S3 PUTs are atomic: write in place.
            return path
        self.fs.makedirs(head, exist_ok=True)
        return f"{head}/.{leaf}.{uuid.uuid4().hex}.tmp"

    def _commit(self, tmp: str, path: str) -> None:
        """Rename the written temporary file into place; locally the file, then its new name, reach the disk."""
        if tmp != path:
            _fsync(tmp)
            self.fs.mv(tmp, path)
            _fsync(path.rsplit("/", 1)[0], directory=True)

    def _atomic_write(self, path: str, data: bytes) -> None:
        with self._io("writing", path):
            tmp = self._tmp_name(path)
            with self.fs.open(tmp, "wb") as handle:
                handle.write(data)
            self._commit(tmp, path)
