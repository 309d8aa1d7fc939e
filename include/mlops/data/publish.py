"""The one way outputs become visible in the lake: stage, verify, swap, marker written last.

Readers trust a partition only once its marker (``_SUCCESS`` by default) exists, so every writer
follows the same protocol:

1. **stage**: files are written into a folder no reader lists (a name starting with '.' or '_');
2. **verify**: the caller checks the staged files (scoring compares row counts with its plan);
3. **swap**: :func:`commit_staged` replaces the partition by the staged files;
4. **marker**: written last, after the swap.

Local disk: the staged folder is renamed beside the partition, the old partition renamed away and the
new one renamed into place; a reader sees the old output, none, or the new one, never a mixture. Before
the marker is written, every published file, the partition folder and its parent (which holds the
renames) are fsynced (:meth:`Lake.sync`), and the marker itself is fsynced with its folder: after a
crash or a power cut a marker on disk always stands in front of complete data.
S3 has no rename: the markers are deleted first (the partition is invalid from then on), then the old
objects, the staged files are copied in, and the marker is written last. Nothing is fsynced there: S3
relies on its own atomicity and durability, each PUT or copy is atomic and durable once it returned
(and read-after-write consistent), so writing the marker only after every other request returned is the
whole ordering guarantee.

Single files (``_VALIDATED.json``, ``reason.json``, reports) need no swap: :func:`publish_json` and
:func:`publish_file` write through a temporary name locally and with one PUT on S3.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from typing import Any

from mlops.data.lake import MARKERS, SUCCESS, Lake

log = logging.getLogger(__name__)


def staging_for(lake: Lake, final: str, run_id: str) -> str:
    """A staging folder beside ``final`` for ``run_id``, hidden from readers; the same run gets the same one."""
    return lake.side(final, "stage", run_id)


def publish_partition(lake: Lake, final: str, write: Callable[[str], None], *,
                      json_files: dict[str, dict[str, Any]] | None = None, marker: str = SUCCESS) -> None:  # fmt: skip
    """Replace the partition ``final`` with what ``write(staging)`` puts into a fresh staging folder.

    If ``write`` raises, the staging folder is removed and the previous output stays as it was.
    ``json_files`` (name -> payload) are written beside the data; ``marker`` is written last.
    """
    staging = staging_for(lake, final, uuid.uuid4().hex)
    if not lake.is_s3:
        with lake._io("creating", staging):
            lake.fs.makedirs(staging, exist_ok=True)
    try:
        write(staging)
    except BaseException:
        _remove_quietly(lake, staging)
        raise
    commit_staged(lake, staging, final, json_files=json_files, marker=marker)


def commit_staged(lake: Lake, staging: str, final: str, *, keep: set[str] | None = None,
                  json_files: dict[str, dict[str, Any]] | None = None, marker: str = SUCCESS) -> None:  # fmt: skip
    """Swap the staged files into ``final`` (replacing its previous content), then write ``marker``.

    Call it once the staged files are verified. Files in ``staging`` whose names are not in ``keep``
    (when given) are dropped first, e.g. parts of an earlier attempt with another plan. Side folders
    of ``final`` left by a killed commit are removed first: the last commit wins, and a concurrent
    commit of the same partition fails loudly rather than mixing outputs.
    """
    if keep is not None:
        with lake._io("listing", staging):  # a missing staging folder stays FileNotFoundError: nothing to commit
            staged = lake.fs.ls(staging, detail=False)
        for path in staged:
            if path.rstrip("/").rsplit("/", 1)[-1] not in keep:
                lake.remove(path)
    json_files = json_files or {}
    _remove_stale_sides(lake, final, staging)
    if lake.is_s3:
        _swap_s3(lake, staging, final, json_files, marker)
    else:
        _swap_local(lake, staging, final, json_files, marker)


def recover_staged(lake: Lake, staging: str, final: str) -> bool:
    """Put the staged files of a local commit that was killed after moving them beside ``final`` back in ``staging``.

    The swap first renames the staging folder to a ``new`` side folder; a commit killed before that side folder
    became ``final`` leaves it there, and the retry of the commit continues from it. True when it found one.
    On S3 the staging folder is only removed after the copy, so there is nothing to recover.
    An I/O error while looking raises :class:`~mlops.data.lake.LakeIOError` (the step is retried): read as
    "nothing to recover", the commit would go on without its files and the next one would delete them.
    """
    if lake.is_s3 or lake.exists(staging):
        return False
    prefix = f"{lake.side_prefix(final)}new-"
    parent = prefix.rsplit("/", 1)[0]
    sides = [p.rstrip("/") for p in lake.listdir(parent)]
    sides = [p for p in sides if p.startswith(prefix)]
    if not sides:
        return False
    with lake._io("checking the side folders of", final):
        newest = max(sides, key=os.path.getmtime)
        lake.fs.makedirs(staging.rsplit("/", 1)[0], exist_ok=True)
    lake.rename(newest, staging)
    log.info("resuming a killed commit of %s from %s", lake.url(final), lake.url(newest))
    return True


def finish_marker(lake: Lake, final: str, marker: str = SUCCESS) -> None:
    """Finish a commit killed after its files were in place: remove its side folders, write the marker."""
    _remove_stale_sides(lake, final, staging="")
    if not lake.exists(f"{final}/{marker}"):
        lake.sync(final)
        lake.touch(f"{final}/{marker}")


def publish_json(lake: Lake, path: str, payload: dict[str, Any]) -> None:
    """Write one JSON file (a marker such as ``_VALIDATED.json``, or a report): old or new, never half."""
    lake.write_json(path, payload)


def publish_file(lake: Lake, local_path: str, path: str) -> None:
    """Copy one rendered local file (an HTML report) into the lake: old or new, never half."""
    lake.upload(local_path, path)


def _swap_local(lake: Lake, staging: str, final: str, json_files: dict[str, dict[str, Any]], marker: str) -> None:
    """Rename-based swap; the side folders start with '.' so ``Lake.days`` and readers never list them."""
    token = uuid.uuid4().hex
    new, old = lake.side(final, "new", token), lake.side(final, "old", token)
    lake.rename(staging, new)
    lake.remove(f"{new}/{marker}")  # a marker that came with the staged files must not arrive early
    for name, payload in json_files.items():
        lake.write_json(f"{new}/{name}", payload)
    if lake.exists(final):
        lake.rename(final, old)
    lake.rename(new, final)
    lake.remove(old)
    lake.sync(final)  # the data and the renames reach the disk before the marker can
    lake.touch(f"{final}/{marker}")


def _swap_s3(lake: Lake, staging: str, final: str, json_files: dict[str, dict[str, Any]], marker: str) -> None:
    """No atomic rename on S3: invalidate first (markers gone), replace, marker last."""
    for name in (marker, *(m for m in MARKERS if m != marker)):
        lake.remove(f"{final}/{name}")
    with lake._io(f"replacing {lake.url(final)} by", staging):
        old = [path for path in lake.fs.find(final) if not path.startswith(f"{staging}/")]
        if old:
            lake.fs.rm(old)
        for path in sorted(lake.fs.find(staging)):
            name = path[len(staging) + 1 :]
            if name != marker:
                lake.fs.copy(path, f"{final}/{name}")
    for name, payload in json_files.items():
        lake.write_json(f"{final}/{name}", payload)
    lake.remove(staging)
    lake.touch(f"{final}/{marker}")


def _remove_stale_sides(lake: Lake, final: str, staging: str) -> None:
    """Remove side folders of ``final`` left by killed runs (never the one being committed).

    An I/O error while listing raises (retried) rather than reading as "no side folder": the commit then never
    goes ahead beside a killed run's leftovers.
    """
    prefix = lake.side_prefix(final)
    parent = prefix.rsplit("/", 1)[0]
    for path in lake.listdir(parent):
        path = path.rstrip("/")
        if path.startswith(prefix) and path != staging.rstrip("/"):
            lake.remove(path)


def _remove_quietly(lake: Lake, path: str) -> None:
    try:
        lake.remove(path)
    except Exception:
        log.warning("could not remove the staging folder %s (the next publish removes it)", lake.url(path),
                    exc_info=True)  # fmt: skip
