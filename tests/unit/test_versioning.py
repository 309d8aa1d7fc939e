"""DVC snapshots: a revision per validated day that a fresh clone of the registry can pull."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

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
