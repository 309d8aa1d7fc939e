"""The lake: day partitions on local disk or S3, behind one small API.

Layout (DESIGN.md): ``raw/dt=D/`` (complete when ``_SUCCESS`` exists), ``labels/dt=D/``,
``quarantine/dt=D/`` with ``reason.json``, ``scores/dt=D/``, ``reports/``. A raw partition that
passed validation carries ``_VALIDATED.json``; downstream steps read only those.

fsspec gives one code path for both backends (s3fs talks to S3, MinIO or moto over HTTP).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

import fsspec

if TYPE_CHECKING:
    import pyarrow as pa

    from mlops.config import Settings

log = logging.getLogger(__name__)

SUCCESS = "_SUCCESS"
VALIDATED = "_VALIDATED.json"
REASON = "reason.json"
AREAS = ("raw", "labels", "quarantine", "scores", "reports")


class Lake:
    """Paths and atomic-enough file operations on the lake root."""

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        self.uri = uri.rstrip("/")
        self.is_s3 = self.uri.startswith("s3://")
        self.fs, self.root = fsspec.core.url_to_fs(self.uri, **(storage_options or {}))
        self.root = self.root.rstrip("/")
        if not self.is_s3:
            self.fs.makedirs(self.root, exist_ok=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> Lake:
        return cls(settings.lake_uri, settings.s3_storage_options() if settings.lake_is_s3 else None)

    # -- paths -------------------------------------------------------------------------------
    def partition(self, area: str, day: dt.date) -> str:
        if area not in AREAS:
            raise ValueError(f"unknown lake area {area!r}; expected one of {AREAS}")
        return f"{self.root}/{area}/dt={day.isoformat()}"

    def url(self, path: str) -> str:
        """The full URI of a path, for messages and markers (``s3://b/k`` or ``/abs/path``)."""
        return f"s3://{path}" if self.is_s3 else path

    def relative(self, path: str) -> str:
        return path[len(self.root) + 1 :] if path.startswith(self.root + "/") else path

    # -- queries -----------------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    def data_files(self, partition: str) -> list[str]:
        """Parquet files of a partition in a stable order (markers and hidden files excluded)."""
        if not self.fs.isdir(partition):
            return []
        names = self.fs.ls(partition, detail=False)
        return sorted(n for n in names if n.endswith(".parquet") and not n.rsplit("/", 1)[-1].startswith((".", "_")))

    def days(self, area: str, marker: str | None = None) -> list[dt.date]:
        """Dates that have a partition in ``area`` (and ``marker`` inside it when given), sorted."""
        base = f"{self.root}/{area}"
        if not self.fs.isdir(base):
            return []
        found = []
        for name in self.fs.ls(base, detail=False):
            leaf = name.rstrip("/").rsplit("/", 1)[-1]
            if not leaf.startswith("dt="):
                continue
            day = dt.date.fromisoformat(leaf[3:])
            if marker is None or self.exists(f"{name.rstrip('/')}/{marker}"):
                found.append(day)
        return sorted(found)

    # -- reads and writes --------------------------------------------------------------------
    def read_json(self, path: str) -> dict[str, Any]:
        with self.fs.open(path, "r") as handle:
            return json.load(handle)

    def write_json(self, path: str, payload: dict[str, Any]) -> None:
        """Write through a temporary name then rename (a single PUT on S3), so readers never see half a file."""
        data = json.dumps(payload, indent=2, sort_keys=True, default=str)
        self._atomic_write(path, data.encode())

    def touch(self, path: str) -> None:
        self._atomic_write(path, b"")

    def write_parquet(self, table: pa.Table, path: str, row_group_size: int = 131_072) -> None:
        import pyarrow.parquet as pq

        tmp = self._tmp_name(path)
        with self.fs.open(tmp, "wb") as handle:
            pq.write_table(table, handle, row_group_size=row_group_size, compression="snappy")
        self._commit(tmp, path)

    def read_partition(self, partition: str) -> pa.Table:
        """All parquet files of a partition as one table (no hive-partition columns are added)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        files = self.data_files(partition)
        if not files:
            raise FileNotFoundError(f"{self.url(partition)} has no parquet files")
        tables = []
        for path in files:
            with self.fs.open(path, "rb") as handle:
                tables.append(pq.read_table(handle))
        return pa.concat_tables(tables)

    def upload(self, local_path: str, path: str) -> None:
        """Copy a local file (a rendered report) into the lake."""
        if not self.is_s3:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        self.fs.put_file(local_path, path)

    def remove(self, path: str) -> None:
        if self.exists(path):
            self.fs.rm(path, recursive=True)

    def move(self, src: str, dst: str) -> None:
        """Move a whole partition, replacing ``dst`` (re-quarantining a day keeps one copy)."""
        self.remove(dst)
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
        if tmp != path:
            self.fs.mv(tmp, path)

    def _atomic_write(self, path: str, data: bytes) -> None:
        tmp = self._tmp_name(path)
        with self.fs.open(tmp, "wb") as handle:
            handle.write(data)
        self._commit(tmp, path)
