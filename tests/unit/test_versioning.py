"""DVC snapshots: a revision per validated day that a fresh clone of the registry can pull."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.config import Settings
from mlops.data.lake import Lake
from mlops.data.landing import land_days
from mlops.versioning import snapshot_partition

DVC = str(Path(sys.executable).with_name("dvc"))


def test_fresh_clone_pulls_the_exact_bytes_of_a_revision(settings: Settings, lake: Lake, tmp_path: Path) -> None:
    day = dt.date(2026, 11, 3)
    land_days(settings, day, days=1, rows_per_day=2_000, seed=5)
    snapshot = snapshot_partition(settings, lake, day, rows=2_000)
    original = Path(lake.data_files(lake.partition("raw", day))[0]).read_bytes()

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", snapshot.registry, str(clone)], check=True)
    subprocess.run(["git", "checkout", "-q", snapshot.revision], cwd=clone, check=True)
    subprocess.run([DVC, "pull", "-q", f"{snapshot.path}.dvc"], cwd=clone, check=True)
    assert (clone / snapshot.path / "part-00000.parquet").read_bytes() == original


def test_unchanged_day_keeps_its_revision_and_a_relanded_day_gets_a_new_one(settings: Settings, lake: Lake) -> None:
    import dvc.api

    day = dt.date(2026, 11, 4)
    land_days(settings, day, days=1, rows_per_day=1_000, seed=5)
    first = snapshot_partition(settings, lake, day, rows=1_000)
    assert snapshot_partition(settings, lake, day, rows=1_000).revision == first.revision

    land_days(settings, day, days=1, rows_per_day=1_500, seed=6)  # the producer re-delivers the day
    second = snapshot_partition(settings, lake, day, rows=1_500)
    assert second.revision != first.revision and second.md5 != first.md5
    # Both revisions stay readable by revision, from the remote.
    for snapshot, rows in ((first, 1_000), (second, 1_500)):
        with dvc.api.open(f"{snapshot.path}/part-00000.parquet", repo=snapshot.registry, rev=snapshot.revision,
                          mode="rb") as handle:  # fmt: skip
            import pyarrow.parquet as pq

            assert pq.read_table(handle).num_rows == rows


def _worker(settings: Settings, name: str, remote: str) -> Settings:
    """The same deployment seen by another worker: its own disk, the shared lake, DVC remote and git remote."""
    return settings.model_copy(update={"versioning": settings.versioning.model_copy(update={
        "registry_path": str(settings.home / name / "data-registry"), "registry_remote": remote,
        "remote_url": settings.dvc_remote_url})})  # fmt: skip


def test_workers_share_the_registry_through_its_git_remote_and_readers_need_only_the_url(
    settings: Settings, lake: Lake, tmp_path: Path
) -> None:
    import shutil

    from mlops.training.snapshot import read_day
    from mlops.versioning import open_registry, registry_head

    bare = tmp_path / "registry.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    remote = f"file://{bare}"
    first, second = dt.date(2026, 11, 5), dt.date(2026, 11, 6)
    land_days(settings, first, days=2, rows_per_day=700, seed=5)
    worker_a, worker_b = _worker(settings, "worker-a", remote), _worker(settings, "worker-b", remote)

    snap_a = snapshot_partition(worker_a, lake, first, rows=700)
    snap_b = snapshot_partition(worker_b, lake, second, rows=700)  # B starts from A's pushed commits
    assert snap_a.registry == snap_b.registry == remote
    head = registry_head(worker_b)
    assert head == snap_b.revision
    log = subprocess.run(["git", "log", "--format=%H", "main"], cwd=bare, capture_output=True, text=True, check=True)
    assert snap_a.revision in log.stdout.split()  # one linear history: B did not overwrite A

    # Neither worker's disk is needed to read both days at the head revision: only the URL and the DVC remote.
    shutil.rmtree(worker_a.dvc_registry_path)
    shutil.rmtree(worker_b.dvc_registry_path)
    fs = open_registry(remote, head)
    for day in (first, second):
        expected = lake.read_partition(lake.partition("raw", day))
        assert read_day(fs, settings, day.isoformat()).num_rows == expected.num_rows == 700

    # A worker that lost its disk clones the registry again and keeps the history.
    snap_again = snapshot_partition(worker_a, lake, first, rows=700)
    assert snap_again.revision == snap_a.revision


def test_a_registry_remote_with_a_password_is_refused() -> None:
    from mlops.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="must not embed a password"):
        load_settings(env={"MLOPS__VERSIONING__REGISTRY_REMOTE": "https://bot:s3cret@git.example.com/data.git"})
    ok = load_settings(env={"MLOPS__VERSIONING__REGISTRY_REMOTE": "ssh://git@git.example.com:22/data.git"})
    assert ok.registry_url == "ssh://git@git.example.com:22/data.git"
