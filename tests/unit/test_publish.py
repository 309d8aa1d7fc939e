"""The publisher: readers see the old output or the new one, the marker arrives last, staging is never listed.

Every test runs on a local lake and on an S3 lake (moto's server over HTTP).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops.config import load_settings
from mlops.data.lake import STATS, SUCCESS, VALIDATED, Lake
from mlops.data.publish import commit_staged, publish_file, publish_json, publish_partition

DAY = dt.date(2026, 11, 10)


@pytest.fixture
def s3_lake(s3_env: dict[str, str], tmp_path: Path) -> Lake:
    import boto3

    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"]).create_bucket(Bucket=bucket)
    settings = load_settings(env={"MLOPS_HOME": str(tmp_path / "s3home"),
                                  "MLOPS__DATASET__LAKE_URI": f"s3://{bucket}/card",
                                  "MLOPS__STORAGE__S3_ENDPOINT_URL": s3_env["AWS_ENDPOINT_URL"]})  # fmt: skip
    lake = Lake.from_settings(settings)
    assert lake.is_s3
    return lake


@pytest.fixture(params=["local", "s3"])
def any_lake(request: pytest.FixtureRequest) -> Lake:
    return request.getfixturevalue("lake" if request.param == "local" else "s3_lake")


def _writer(lake: Lake, **files: list[int]) -> Callable[[str], None]:
    """A ``write`` that puts one parquet file per keyword (``name=[values]``) into the staging folder."""

    def write(staging: str) -> None:
        for name, values in files.items():
            lake.write_parquet(pa.table({"x": values}), f"{staging}/{name}.parquet")

    return write


def _contents(lake: Lake, partition: str) -> dict[str, list[int]]:
    """What a reader of the partition sees: data file name -> its values."""
    out = {}
    for path in lake.data_files(partition):
        with lake.fs.open(path, "rb") as handle:
            out[path.rsplit("/", 1)[-1]] = pq.read_table(handle).column("x").to_pylist()
    return out


def _everything_beside(lake: Lake, partition: str) -> list[str]:
    """Every entry of the partition's parent other than the day partitions themselves (side folders)."""
    parent = partition.rsplit("/", 1)[0]
    return [p for p in lake.fs.ls(parent, detail=False) if not p.rstrip("/").rsplit("/", 1)[-1].startswith("dt=")]


def test_publishing_twice_replaces_the_partition_exactly(any_lake: Lake) -> None:
    lake = any_lake
    final = lake.partition("raw", DAY)
    publish_partition(lake, final, _writer(lake, a=[1], b=[2]), json_files={STATS: {"rows": 2}})
    lake.write_json(lake.marker("raw", DAY, VALIDATED), {"rows": 2})  # validated by a later step
    assert _contents(lake, final) == {"a.parquet": [1], "b.parquet": [2]}

    publish_partition(lake, final, _writer(lake, c=[3]))
    assert _contents(lake, final) == {"c.parquet": [3]}, "files of the old output must not survive"
    assert lake.exists(lake.marker("raw", DAY, SUCCESS))
    assert not lake.exists(lake.marker("raw", DAY, VALIDATED)), "re-landed data is not validated any more"
    assert not lake.exists(lake.marker("raw", DAY, STATS))
    assert lake.days("raw") == lake.days("raw", SUCCESS) == [DAY]
    assert _everything_beside(lake, final) == []


def test_a_failing_write_leaves_the_previous_output_and_no_trace(any_lake: Lake) -> None:
    lake = any_lake
    final = lake.partition("labels", DAY)
    publish_partition(lake, final, _writer(lake, old=[1, 2]))

    def half_written(staging: str) -> None:
        _writer(lake, new=[9])(staging)
        raise RuntimeError("the producer died")

    with pytest.raises(RuntimeError, match="producer died"):
        publish_partition(lake, final, half_written)
    assert _contents(lake, final) == {"old.parquet": [1, 2]}
    assert lake.days("labels", SUCCESS) == [DAY]
    assert _everything_beside(lake, final) == [], "the failed staging folder is removed"


def test_a_first_publish_that_fails_leaves_no_partition(any_lake: Lake) -> None:
    lake = any_lake
    final = lake.partition("shadow", DAY)

    def broken(staging: str) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        publish_partition(lake, final, broken)
    assert not lake.exists(final) and lake.days("shadow") == []


def test_staging_is_invisible_to_readers_while_it_is_written(any_lake: Lake) -> None:
    lake = any_lake
    final = lake.partition("raw", DAY)
    seen: dict[str, object] = {}

    def write(staging: str) -> None:
        _writer(lake, part=[1])(staging)
        seen["days"], seen["files"], seen["exists"] = lake.days("raw"), lake.data_files(final), lake.exists(final)

    publish_partition(lake, final, write)
    assert seen == {"days": [], "files": [], "exists": False}

    def rewrite(staging: str) -> None:
        _writer(lake, part=[2])(staging)
        seen["contents"] = _contents(lake, final)

    publish_partition(lake, final, rewrite)
    assert seen["contents"] == {"part.parquet": [1]}, "while staging, readers still see the old output"
    assert _contents(lake, final) == {"part.parquet": [2]}


def test_the_marker_is_written_after_the_data_and_json_files(any_lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = any_lake
    final = lake.partition("scores", DAY)
    publish_partition(lake, final, _writer(lake, part=[1]))
    present_at_marker: list[list[str]] = []
    touch = lake.touch

    def recording_touch(path: str) -> None:
        if path == lake.marker("scores", DAY, SUCCESS):
            present_at_marker.append(sorted(p.rsplit("/", 1)[-1] for p in lake.fs.find(final)))
        touch(path)

    monkeypatch.setattr(lake, "touch", recording_touch)

    def write(staging: str) -> None:
        _writer(lake, part=[2])(staging)
        lake.touch(f"{staging}/{SUCCESS}")  # a careless writer marks its own staging: must not arrive early

    publish_partition(lake, final, write, json_files={STATS: {"rows": 1}})
    assert present_at_marker[-1] == [STATS, "part.parquet"], "data and _STATS.json first, then _SUCCESS"
    assert lake.read_json(lake.marker("scores", DAY, STATS)) == {"rows": 1}
    assert lake.exists(lake.marker("scores", DAY, SUCCESS))


def test_s3_invalidates_the_markers_before_replacing_objects(s3_lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 has no rename: no reader may trust the partition (``_SUCCESS``, ``_VALIDATED.json``) mid-swap."""
    lake = s3_lake
    final = lake.partition("raw", DAY)
    publish_partition(lake, final, _writer(lake, part=[1]))
    lake.write_json(lake.marker("raw", DAY, VALIDATED), {"rows": 1})
    trusted_while_changing: list[bool] = []
    copy, rm = lake.fs.copy, lake.fs.rm

    def trusted() -> bool:
        return lake.exists(lake.marker("raw", DAY, SUCCESS)) or lake.exists(lake.marker("raw", DAY, VALIDATED))

    def recording_copy(*args: object, **kwargs: object) -> None:
        trusted_while_changing.append(trusted())
        copy(*args, **kwargs)

    def recording_rm(path: str | list[str], *args: object, **kwargs: object) -> None:
        if any(str(p).endswith(".parquet") for p in ([path] if isinstance(path, str) else path)):
            trusted_while_changing.append(trusted())
        rm(path, *args, **kwargs)

    monkeypatch.setattr(lake.fs, "copy", recording_copy)
    monkeypatch.setattr(lake.fs, "rm", recording_rm)
    publish_partition(lake, final, _writer(lake, part=[2]))
    assert trusted_while_changing and not any(trusted_while_changing), "objects changed under a trusted marker"
    assert _contents(lake, final) == {"part.parquet": [2]}


def test_commit_staged_keeps_only_the_planned_parts_and_clears_killed_runs(any_lake: Lake) -> None:
    lake = any_lake
    final = lake.partition("scores", DAY)
    publish_partition(lake, final, _writer(lake, previous=[0]))
    killed = lake.side(final, "new", "killed-run")  # a commit killed half-way left this beside the day
    lake.write_parquet(pa.table({"x": [7]}), f"{killed}/part-00000.parquet")
    other_run = lake.staging("scores", DAY, "scheduled__2026-11-10T00:00:00+00:00")
    lake.write_parquet(pa.table({"x": [8]}), f"{other_run}/part-00000.parquet")

    staging = lake.staging("scores", DAY, "manual__2026-11-11T08:00:00+00:00")
    for index, values in enumerate([[1, 2], [3], [4]]):
        lake.write_parquet(pa.table({"x": values}), f"{staging}/part-{index:05d}.parquet")
    commit_staged(lake, staging, final, keep={"part-00000.parquet", "part-00001.parquet"},
                  json_files={STATS: {"rows": 3}})  # fmt: skip

    assert _contents(lake, final) == {"part-00000.parquet": [1, 2], "part-00001.parquet": [3]}
    names = sorted(p[len(final) + 1 :] for p in lake.fs.find(final))
    assert names == sorted([STATS, SUCCESS, "part-00000.parquet", "part-00001.parquet"]), "no staging survives"
    assert lake.read_json(lake.marker("scores", DAY, STATS)) == {"rows": 3}
    assert _everything_beside(lake, final) == [] and lake.days("scores", SUCCESS) == [DAY]


def test_single_file_outputs_replace_the_previous_file(any_lake: Lake, tmp_path: Path) -> None:
    lake = any_lake
    report = lake.report("drift", DAY, "report.html", "cards")
    for text in ("<p>first</p>", "<p>second</p>"):
        local = tmp_path / "report.html"
        local.write_text(text)
        publish_file(lake, str(local), report)
    assert lake.fs.cat_file(report) == b"<p>second</p>"
    assert [p.rsplit("/", 1)[-1] for p in lake.fs.ls(report.rsplit("/", 1)[0], detail=False)] == ["report.html"]

    marker = lake.marker("raw", DAY, VALIDATED)
    publish_json(lake, marker, {"rows": 1})
    publish_json(lake, marker, {"rows": 2})
    assert lake.read_json(marker) == {"rows": 2}


def test_reports_of_a_dataset_share_one_folder(lake: Lake) -> None:
    """The drift report and the drift history of a dataset sit side by side, apart from other datasets."""
    base = f"{lake.root}/reports/drift/cards"
    assert lake.report("drift", DAY, "report.html", "cards") == f"{base}/dt=2026-11-10/report.html"
    assert lake.drift_history("cards", DAY) == f"{base}/history/dt=2026-11-10.json"
    assert lake.drift_history_dir("loans") != lake.drift_history_dir("cards")
    with pytest.raises(ValueError, match="segment"):
        lake.report("drift", DAY, "report.html", "../cards")


def test_run_ids_become_distinct_hidden_free_path_segments(lake: Lake) -> None:
    """Airflow run ids carry ':' and '+'; two ids that clean up alike must still stage apart."""
    first = lake.staging("scores", DAY, "manual__2026-11-10T08:00:00+00:00")
    second = lake.staging("scores", DAY, "manual__2026-11-10T08:00:00_00:00")
    leaf = first.rsplit("/", 1)[-1]
    assert first != second and ":" not in leaf and "+" not in leaf
    assert lake.staging("scores", DAY, "run-1").endswith("/scores/dt=2026-11-10/_staging/run-1")
    assert not lake.staging("scores", DAY, ".hidden").rsplit("/", 1)[-1].startswith(".")


def test_local_data_and_renames_reach_the_disk_before_the_marker(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    """A power cut after the marker must never find a marker in front of data (or a rename) still in the page cache."""
    import os

    final = lake.partition("scores", DAY)
    publish_partition(lake, final, _writer(lake, part=[0]))  # an old output to swap away
    events: list[tuple[str, str]] = []
    fsync, rename = os.fsync, os.rename

    def recording_fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def recording_rename(src: str, dst: str, *args: object, **kwargs: object) -> None:
        rename(src, dst, *args, **kwargs)
        events.append(("rename", os.path.realpath(dst)))

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "rename", recording_rename)
    publish_partition(lake, final, _writer(lake, a=[1], b=[2]), json_files={STATS: {"rows": 2}})
    monkeypatch.undo()

    real = os.path.realpath(final)
    marker = f"{real}/{SUCCESS}"
    at_marker = events.index(("rename", marker))
    swapped = max(i for i, event in enumerate(events[:at_marker]) if event == ("rename", real))
    synced_after_swap = {path for kind, path in events[swapped:at_marker] if kind == "fsync"}
    published = {f"{real}/{name}" for name in ("a.parquet", "b.parquet", STATS)}
    assert published <= synced_after_swap, f"files not on disk before the marker: {published - synced_after_swap}"
    assert {real, os.path.dirname(real)} <= synced_after_swap, "the swap's renames must be durable before the marker"
    assert ("fsync", real) in events[at_marker:], "the marker's own name must be made durable"
    assert _contents(lake, final) == {"a.parquet": [1], "b.parquet": [2]}
