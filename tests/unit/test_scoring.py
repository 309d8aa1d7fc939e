"""Batch scoring in-process: one complete output per day, equal to plain XGBoost, idempotent and atomic."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops.aliases import pin_champion
from mlops.config import Settings, load_settings
from mlops.data.lake import STATS, SUCCESS, VALIDATED, Lake
from mlops.data.landing import land_days
from mlops.features import FeatureSpec, build_matrix
from mlops.models import NoChampion, PinnedModel
from mlops.registry import CHAMPION, Registry
from mlops.scoring import (
    Chunk,
    ChunkResult,
    ScoringIncomplete,
    ScoringInputError,
    commit_scores,
    pending_days,
    plan_chunks,
    score_chunk,
    score_day,
    scored_by,
    shadow_score,
    unscored_days,
)
from mlops.validation import validate_and_version

START, DAYS = dt.date(2026, 9, 1), 9
AS_OF = START + dt.timedelta(days=DAYS + 2)  # labels of every day have arrived (delay 3)
DAY = START + dt.timedelta(days=DAYS - 1)  # the day scored by the module fixture
ROWS = 4_000
RUN_COLUMNS = ["airflow_run_id", "scored_at"]  # the only columns that differ between two runs of a day


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Nine validated, labelled days and a champion trained, registered and promoted by the pipeline."""
    from mlops.training.pipeline import run_all

    settings = load_settings(env={"MLOPS_HOME": str(tmp_path_factory.mktemp("scoring"))})
    land_days(settings, START, DAYS, rows_per_day=ROWS, seed=21, labels_until=AS_OF)
    for offset in range(DAYS):
        validate_and_version(settings, START + dt.timedelta(days=offset))
    outcome = run_all(settings, AS_OF, {"reason": "scoring tests"}, actor="test")
    assert not isinstance(outcome["promotion"], str), outcome["summary"]
    return settings


@pytest.fixture(scope="module")
def scored(home: Settings) -> dict[str, Any]:
    """DAY scored once by ``score_day`` (what ``mlops score --date`` runs)."""
    return score_day(home, DAY, run_id="run-1")


# -- helpers ---------------------------------------------------------------------------------------------
def _scoring(settings: Settings, **values: Any) -> Settings:
    return settings.model_copy(update={"scoring": settings.scoring.model_copy(update=values)})


def _read_scores(lake: Lake, day: dt.date) -> pa.Table:
    """What a reader may use: only a partition with ``_SUCCESS``."""
    partition = lake.partition("scores", day)
    assert lake.exists(f"{partition}/{SUCCESS}"), f"{partition} has no {SUCCESS}"
    return lake.read_partition(partition)


def _raw(lake: Lake, day: dt.date) -> pa.Table:
    return lake.read_partition(lake.partition("raw", day))


def _land_copy(lake: Lake, table: pa.Table, day: dt.date, row_group_size: int = 131_072, files: int = 1) -> None:
    """A validated raw partition holding ``table`` (split into ``files`` files with small row groups if asked)."""
    partition = lake.partition("raw", day)
    lake.remove(partition)
    bounds = np.linspace(0, table.num_rows, files + 1).astype(int)
    for i in range(files):
        piece = table.slice(bounds[i], bounds[i + 1] - bounds[i])
        lake.write_parquet(piece, f"{partition}/part-{i:05d}.parquet", row_group_size=row_group_size)
    lake.touch(f"{partition}/{SUCCESS}")
    marker = {"rows": table.num_rows, "manifest": lake.manifest(partition), "note": "copied by test_scoring"}
    lake.write_json(f"{partition}/{VALIDATED}", marker)


def _leftovers(lake: Lake, day: dt.date) -> list[str]:
    """Anything besides the committed output: staging folders or swap folders of a day."""
    partition = lake.partition("scores", day)
    inside = [p for p in lake.fs.find(partition) if "/_staging/" in p] if lake.exists(partition) else []
    beside = [p for p in lake.fs.ls(f"{lake.root}/scores", detail=False) if f"dt={day}." in p]
    return inside + beside


# -- tests -----------------------------------------------------------------------------------------------------
def test_score_day_writes_exactly_one_complete_output(home: Settings, scored: dict[str, Any]) -> None:
    lake = Lake.from_settings(home)
    scores, raw = _read_scores(lake, DAY), _raw(lake, DAY)
    champion = Registry(home).alias_version(CHAMPION)
    id_column = home.dataset.id_column

    assert scores.num_rows == raw.num_rows == ROWS
    ids = scores.column(id_column).to_numpy()
    assert len(np.unique(ids)) == ROWS and np.array_equal(ids, raw.column(id_column).to_numpy())
    assert scores.schema.field(id_column).type == raw.schema.field(id_column).type
    assert scores.schema.field("score").type == pa.float32()
    assert scores.schema.field("scored_at").type == pa.timestamp("us", tz="UTC")
    assert set(scores.column("model_version").to_pylist()) == {champion}
    assert set(scores.column("model_run_id").to_pylist()) == {pin_champion(home).run_id}
    assert set(scores.column("airflow_run_id").to_pylist()) == {"run-1"}
    assert len(set(scores.column("scored_at").to_pylist())) == 1

    score = scores.column("score").to_numpy()
    decision = scores.column("decision").to_numpy(zero_copy_only=False)
    assert np.array_equal(decision, score.astype(np.float64) >= home.model.decision_threshold)
    stats = lake.read_json(f"{lake.partition('scores', DAY)}/{STATS}")
    assert stats["rows"] == ROWS and stats["positives"] == int(decision.sum()) == scored["positives"]
    assert stats["positive_rate"] == pytest.approx(decision.mean())
    assert stats["mean_score"] == pytest.approx(float(score.astype(np.float64).mean()), rel=1e-9)
    assert sum(stats["score_hist"]) == ROWS and len(stats["score_hist"]) == 20
    assert np.array_equal(stats["score_hist"], np.histogram(score, bins=20, range=(0.0, 1.0))[0])
    assert (stats["model_version"], stats["run_id"], stats["day"]) == (champion, "run-1", DAY.isoformat())
    assert _leftovers(lake, DAY) == []
    assert lake.days("scores", SUCCESS) == [DAY]


def test_scores_equal_plain_xgboost_on_the_whole_day(home: Settings, scored: dict[str, Any]) -> None:
    """Streaming in batches changes nothing: bit-identical to one inplace_predict on the whole day."""
    import mlflow

    lake = Lake.from_settings(home)
    version = Registry(home).alias_version(CHAMPION)
    run_id = Registry(home).client.get_model_version(home.model_name, version).run_id
    mlflow.set_tracking_uri(home.mlflow_tracking_uri)
    spec = FeatureSpec.from_dict(mlflow.artifacts.load_dict(f"runs:/{run_id}/feature_spec.json"))
    model = mlflow.xgboost.load_model(f"models:/{home.model_name}/{version}")
    expected = model.inplace_predict(build_matrix(_raw(lake, DAY), spec)).astype(np.float32)

    small_batches = score_day(_scoring(home, batch_rows=1_024), DAY, run_id="run-1")
    assert small_batches["rows"] == ROWS
    np.testing.assert_array_equal(_read_scores(lake, DAY).column("score").to_numpy(), expected)


def test_rerunning_a_day_replaces_its_output_exactly(home: Settings, scored: dict[str, Any]) -> None:
    lake = Lake.from_settings(home)
    before = _read_scores(lake, DAY)
    again = score_day(home, DAY, run_id="run-1")
    after = _read_scores(lake, DAY)
    assert after.drop_columns(["scored_at"]).equals(before.drop_columns(["scored_at"]))
    volatile = {"shadow", "scoring_seconds"}  # timings differ run to run; everything else is identical
    assert {k: v for k, v in again.items() if k not in volatile} == {
        k: v for k, v in scored.items() if k not in volatile
    }
    assert len(lake.data_files(lake.partition("scores", DAY))) == 1 and _leftovers(lake, DAY) == []

    # A retried task (same chunk, same scored_at, same run) writes the same bytes.
    pinned = pin_champion(home)
    chunk = plan_chunks(home, lake, DAY, pinned)[0].stamped("2026-09-10T00:00:00+00:00")
    part = f"{lake.staging('scores', DAY, 'retry')}/part-00000.parquet"
    score_chunk(home, lake, DAY, pinned, chunk, "retry")
    first = lake.fs.cat_file(part)
    score_chunk(home, lake, DAY, pinned, chunk, "retry")
    assert lake.fs.cat_file(part) == first
    lake.remove(f"{lake.partition('scores', DAY)}/_staging")


def test_many_chunks_give_the_same_output_as_one(home: Settings, scored: dict[str, Any]) -> None:
    lake = Lake.from_settings(home)
    day = dt.date(2026, 10, 1)
    _land_copy(lake, _raw(lake, DAY), day, row_group_size=500, files=2)  # 8 row groups over 2 files

    one = plan_chunks(home, lake, day)
    assert len(one) == 1 and one[0].rows == ROWS and len(one[0].row_groups) == 8
    for chunk_rows, max_chunks, expected in [
        (1_000, 32, 4),
        (1_000, 3, 3),
        (1, 5, 4),
        (1, 1, 1),
        (700, 32, 8),
        (10**6, 32, 1),
    ]:
        chunks = plan_chunks(_scoring(home, chunk_rows=chunk_rows, max_chunks=max_chunks), lake, day)
        assert len(chunks) == expected <= max_chunks
        assert [c.index for c in chunks] == list(range(expected)) and sum(c.rows for c in chunks) == ROWS
        assert [g for c in chunks for g in c.row_groups] == one[0].row_groups, "each row group once, in order"

    many = _scoring(home, chunk_rows=1_000, batch_rows=1_024)
    stats = score_day(many, day, run_id="many")
    assert stats["chunks"] == 4 and stats["rows"] == ROWS
    assert len(lake.data_files(lake.partition("scores", day))) == 4
    chunked = _read_scores(lake, day)
    whole = _read_scores(lake, DAY)
    assert chunked.drop_columns(RUN_COLUMNS).equals(whole.drop_columns(RUN_COLUMNS))
    assert stats["score_hist"] == scored["score_hist"] and stats["positives"] == scored["positives"]
    assert _leftovers(lake, day) == []


def test_no_champion_says_to_run_continuous_training(tmp_path: Path) -> None:
    settings = load_settings(env={"MLOPS_HOME": str(tmp_path / "empty")})
    with pytest.raises(NoChampion, match="continuous_training"):
        pin_champion(settings)
    with pytest.raises(NoChampion, match="continuous_training"):
        score_day(settings, DAY)


def test_unvalidated_or_incomplete_partitions_fail_before_any_scoring(home: Settings) -> None:
    lake = Lake.from_settings(home)
    pinned = pin_champion(home)
    day = dt.date(2026, 10, 2)
    _land_copy(lake, _raw(lake, DAY).drop_columns(["amount"]), day)
    with pytest.raises(ScoringInputError, match=r"lacks column\(s\) \['amount'\]"):
        plan_chunks(home, lake, day, pinned)
    with pytest.raises(ScoringInputError, match="amount"):
        score_day(home, day, run_id="missing")
    assert not lake.exists(lake.partition("scores", day)), "no part, no staging, nothing"

    lake.remove(f"{lake.partition('raw', day)}/{VALIDATED}")
    with pytest.raises(ScoringInputError, match="data_validation"):
        plan_chunks(home, lake, day, pinned)


def test_a_corrupt_file_fails_and_keeps_the_previous_output(home: Settings) -> None:
    lake = Lake.from_settings(home)
    day = dt.date(2026, 10, 3)
    _land_copy(lake, _raw(lake, DAY), day, row_group_size=1_000)
    score_day(home, day, run_id="good")
    good = _read_scores(lake, day)
    path = lake.data_files(lake.partition("raw", day))[0]
    original = Path(path).read_bytes()

    # Bytes of row group 2's first data page overwritten after validation: the footer still reads, and the
    # chunk fails half-way, after its first row groups were written to the part.
    pinned = pin_champion(home)
    (chunk,) = plan_chunks(home, lake, day, pinned)
    amount = pq.ParquetFile(path).schema_arrow.get_field_index("amount")
    offset = pq.ParquetFile(path).metadata.row_group(2).column(amount).data_page_offset
    Path(path).write_bytes(original[:offset] + b"\xff" * 64 + original[offset + 64 :])
    small_batches = _scoring(home, batch_rows=1_024)
    with pytest.raises(ScoringInputError, match=rf"{path} row groups \[0, 1, 2, 3\]"):
        score_chunk(small_batches, lake, day, pinned, chunk.stamped("2026-10-04T00:00:00Z"), "bad")
    assert lake.fs.ls(lake.staging("scores", day, "bad")) == [], "the half-written part is removed"
    with pytest.raises(ScoringInputError, match=r"part-00000\.parquet changed after validation"):
        score_day(home, day, run_id="bad")  # a whole run plans first: the changed bytes are refused up front
    assert _read_scores(lake, day).equals(good), "the earlier good output is untouched"

    # Truncated: the footer itself is gone, the plan fails naming the file.
    Path(path).write_bytes(original[: len(original) // 2])
    with pytest.raises(ScoringInputError, match=rf"{path}"):
        score_day(home, day, run_id="bad")
    assert _read_scores(lake, day).equals(good), "the earlier good output is untouched"


def test_a_killed_run_leaves_nothing_visible_and_a_retry_commits_once(home: Settings) -> None:
    lake = Lake.from_settings(home)
    day = dt.date(2026, 10, 5)
    _land_copy(lake, _raw(lake, DAY), day, row_group_size=1_000)
    settings = _scoring(home, chunk_rows=1_000)
    pinned = pin_champion(settings)
    chunks = plan_chunks(settings, lake, day, pinned)
    assert len(chunks) == 4
    for chunk in chunks[:2]:  # the worker dies after two of four chunks: no commit
        score_chunk(settings, lake, day, pinned, chunk.stamped("2026-10-06T00:00:00+00:00"), "killed")
    assert not lake.exists(f"{lake.partition('scores', day)}/{SUCCESS}")
    assert lake.data_files(lake.partition("scores", day)) == [], "staged parts are not output"
    assert lake.days("scores", SUCCESS).count(day) == 0

    stats = score_day(settings, day, run_id="retry")
    scores = _read_scores(lake, day)
    assert stats["rows"] == scores.num_rows == ROWS
    assert len(np.unique(scores.column(home.dataset.id_column).to_numpy())) == ROWS
    assert set(scores.column("airflow_run_id").to_pylist()) == {"retry"}
    assert _leftovers(lake, day) == [], "the killed run's staging went with the swap"

    # A commit killed after the swap, before `_SUCCESS`: readers trust nothing; the next run repairs the day.
    real_touch = Lake.touch

    def killed_at_success(self: Lake, path: str) -> None:
        if path.endswith(f"/{SUCCESS}") and "/scores/" in path:
            raise KeyboardInterrupt("worker killed")
        real_touch(self, path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Lake, "touch", killed_at_success)
        with pytest.raises(KeyboardInterrupt):
            score_day(settings, day, run_id="killed-commit")
    assert not lake.exists(f"{lake.partition('scores', day)}/{SUCCESS}") and day not in lake.days("scores", SUCCESS)
    score_day(settings, day, run_id="retry")
    assert _read_scores(lake, day).drop_columns(["scored_at"]).equals(scores.drop_columns(["scored_at"]))
    assert _leftovers(lake, day) == []

    # A commit that is handed an incomplete set of chunk results refuses and changes nothing.
    scores = _read_scores(lake, day)
    results = [score_chunk(settings, lake, day, pinned, c.stamped("2026-10-06T00:00:00Z"), "partial")
               for c in chunks[:3]]  # fmt: skip
    with pytest.raises(ScoringIncomplete, match=r"do not match the plan"):
        commit_scores(settings, lake, day, pinned, results, "partial")
    assert _read_scores(lake, day).equals(scores)


def test_scoring_on_s3(home: Settings, s3_env: dict[str, str]) -> None:
    import boto3

    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"]).create_bucket(Bucket=bucket)
    dataset = home.dataset.model_copy(update={"lake_uri": f"s3://{bucket}/card"})
    s3 = home.model_copy(update={"dataset": dataset})  # same MLflow registry and champion, lake on S3
    lake, local = Lake.from_settings(s3), Lake.from_settings(home)
    assert lake.is_s3
    _land_copy(lake, _raw(local, DAY), DAY, row_group_size=1_000)

    score_day(_scoring(s3, chunk_rows=1_000), DAY, run_id="s3-many")  # 4 parts
    stats = score_day(s3, DAY, run_id="s3-one")  # replaced by 1 part: the old parts must go
    partition = lake.partition("scores", DAY)
    names = sorted(p.rsplit("/", 1)[-1] for p in lake.fs.find(partition))
    assert names == [STATS, SUCCESS, "part-00000.parquet"]
    assert stats["rows"] == ROWS and lake.read_json(f"{partition}/{STATS}")["run_id"] == "s3-one"
    remote = _read_scores(lake, DAY).drop_columns(RUN_COLUMNS)
    assert remote.equals(_read_scores(local, DAY).drop_columns(RUN_COLUMNS))

    # A chunk failing half-way aborts its upload: no part object, the output stays.
    raw_file = lake.data_files(lake.partition("raw", DAY))[0]
    data = lake.fs.cat_file(raw_file)
    with lake.fs.open(raw_file, "rb") as handle:
        meta = pq.ParquetFile(handle).metadata
    amount = meta.schema.to_arrow_schema().get_field_index("amount")
    offset = meta.row_group(2).column(amount).data_page_offset
    pinned = pin_champion(s3)
    (chunk,) = plan_chunks(s3, lake, DAY, pinned)  # planned on the validated bytes, which then change
    lake.fs.pipe_file(raw_file, data[:offset] + b"\xff" * 64 + data[offset + 64 :])
    with pytest.raises(ScoringInputError, match="row groups"):
        score_chunk(_scoring(s3, batch_rows=1_024), lake, DAY, pinned, chunk.stamped("2026-10-04"), "bad")
    assert not lake.exists(f"{lake.staging('scores', DAY, 'bad')}/part-00000.parquet")
    assert _read_scores(lake, DAY).drop_columns(RUN_COLUMNS).equals(remote)


def test_shadow_scoring_compares_a_distinct_challenger(home: Settings, scored: dict[str, Any]) -> None:
    from mlops.training.snapshot import resolve_snapshot
    from mlops.training.train import train

    lake = Lake.from_settings(home)
    pinned = pin_champion(home)
    settings = _scoring(home, shadow_sample_rows=1_000)
    assert Registry(home).alias_version("challenger") == pinned.version
    assert shadow_score(settings, lake, DAY, pinned, "shadow") is None, "challenger == champion: nothing to compare"
    assert scored["shadow"] is None

    other = home.model_copy(update={"model": home.model.model_copy(update={"params": {**home.model.params,
                                                                                      "max_depth": 3}})})  # fmt: skip
    result = train(other, resolve_snapshot(other, AS_OF), {"reason": "a challenger for shadow scoring"})
    registry = Registry(home)
    version = registry.register(result.run_id, result.model_uri, {"gates.passed": "true"})
    registry.set_challenger(version, actor="test", reason="shadow test", run="test")

    summary = shadow_score(settings, lake, DAY, pinned, "shadow")
    assert summary is not None
    assert (summary["rows"], summary["champion_version"], summary["challenger_version"]) == (
        1_000, pinned.version, version)  # fmt: skip
    assert 0.0 <= summary["decision_agreement"] <= 1.0 and summary["mean_abs_diff"] > 0.0
    partition = f"{lake.root}/scores/shadow/dt={DAY}"
    assert lake.exists(f"{partition}/{SUCCESS}")
    shadow = pq.read_table(f"{partition}/part-0.parquet")
    assert shadow.column_names == [home.dataset.id_column, "champion_score", "challenger_score",
                                   "champion_version", "challenger_version"]  # fmt: skip
    assert set(shadow.column("challenger_version").to_pylist()) == {version}
    # The champion's side equals the day's real scores for the same ids; the champion output is untouched.
    main = _read_scores(lake, DAY)
    position = {key: i for i, key in enumerate(main.column(home.dataset.id_column).to_pylist())}
    rows = [position[key] for key in shadow.column(home.dataset.id_column).to_pylist()]
    np.testing.assert_array_equal(shadow.column("champion_score").to_numpy(),
                                  main.column("score").to_numpy()[rows])  # fmt: skip
    assert sorted(p.rsplit("/", 1)[-1] for p in lake.fs.ls(lake.partition("scores", DAY))) == sorted(
        [STATS, SUCCESS, "part-00000.parquet"])  # fmt: skip
    again = shadow_score(settings, lake, DAY, PinnedModel.from_dict(pinned.to_dict()), "shadow")
    assert again == summary, "seeded sample: the same rows every time"


# -- backlogs: every validated day once --------------------------------------------------------------------
def _marked(lake: Lake, validated: list[dt.date], scored: dict[dt.date, str]) -> None:
    """Markers only: validated days, and days with committed scores (run id -> ``_STATS.json``)."""
    for day in validated:
        lake.write_json(lake.marker("raw", day, VALIDATED), {"rows": 1})
    for day, run_id in scored.items():
        lake.write_json(lake.marker("scores", day, STATS), {"run_id": run_id, "model_version": "3", "rows": 1})
        lake.touch(lake.marker("scores", day, SUCCESS))


def test_pending_days_are_every_validated_unscored_day_oldest_first_and_capped(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    d = [dt.date(2026, 7, 1) + dt.timedelta(days=i) for i in range(6)]
    _marked(lake, d[:5], {d[1]: "scheduled__2026-07-02"})
    lake.fs.makedirs(lake.staging("scores", d[3], "killed"), exist_ok=True)  # staging of a killed run: not scores
    lake.fs.makedirs(lake.partition("raw", d[5]), exist_ok=True)  # landed, not validated

    assert unscored_days(lake) == [d[0], d[2], d[3], d[4]]
    assert scored_by(lake, d[1]) == {"run_id": "scheduled__2026-07-02", "model_version": "3", "rows": 1}
    assert scored_by(lake, d[3]) is None

    # The run's own day is scored already: it says by whom; the backlog, oldest first, is scored instead.
    backlog = pending_days(lake, [d[1]])
    assert backlog.days == [d[0], d[2], d[3], d[4]] and backlog.deferred == []
    assert backlog.notes() == [f"dt={d[1]} already scored by scheduled__2026-07-02 with v3"]

    # Capped: the oldest first, the rest wait for the next run (and the log says so).
    capped = pending_days(lake, [d[4]], limit=2)
    assert capped.days == [d[0], d[2]] and capped.deferred == [d[3], d[4]]
    assert capped.notes() == [f"2 more validated day(s) wait ({d[3]}..{d[4]}): beyond scoring.backlog_days, "
                              "the next run scores them"]  # fmt: skip

    # params.date re-scores a scored day (and still takes the oldest waiting days up to the cap).
    assert pending_days(lake, [d[1]], forced=True, limit=2).days == [d[0], d[1]]
    assert pending_days(lake, [d[5]], forced=True, limit=1).days == [d[5]], "the plan then says it is not validated"

    # Nothing waits: the reason names the run's day and who scored it.
    _marked(lake, [], {day: "asset_triggered__x" for day in (d[0], d[2], d[3], d[4])})
    done = pending_days(lake, [d[4], d[5]])
    assert done.days == []
    assert done.reason() == (f"nothing to score: dt={d[4]} already scored by asset_triggered__x with v3; dt={d[5]} is "
                             "not validated: not scored (a validated-data event will start the run that scores it); "
                             "no other validated day up to this run's day waits")  # fmt: skip
    assert pending_days(lake).reason() == "nothing to score: every validated day has its scores"


def test_a_run_for_day_d_scores_only_days_up_to_d(tmp_path: Path) -> None:
    """A backfill (or a re-run) of an old day never scores the newer days waiting: their own runs do."""
    lake = Lake(str(tmp_path / "lake"))
    d = [dt.date(2026, 7, 1) + dt.timedelta(days=i) for i in range(6)]
    _marked(lake, d, {d[0]: "scheduled__2026-07-01"})

    backlog = pending_days(lake, [d[2]], up_to=d[2])
    assert backlog.days == [d[1], d[2]] and backlog.later == [d[3], d[4], d[5]]
    assert backlog.notes() == [f"3 validated day(s) after this run's day wait ({d[3]}..{d[5]}): their own runs score "
                               "them"]  # fmt: skip
    assert pending_days(lake, [d[2]], up_to=d[2]) == backlog, "the same run again: the same days"
    assert pending_days(lake, [d[0]], up_to=d[0], forced=True).days == [d[0]], "a re-score of d0 touches d0 only"
    assert pending_days(lake, [d[5]], up_to=d[5]).days == d[1:], "today's run catches up every missed day"


def test_one_run_scores_several_days_each_committed_with_only_its_own_chunks(home: Settings) -> None:
    lake = Lake.from_settings(home)
    settings = _scoring(home, chunk_rows=1_000)
    days = [dt.date(2026, 10, 10), dt.date(2026, 10, 11)]
    for day in days:
        _land_copy(lake, _raw(lake, DAY), day, row_group_size=1_000)
    pinned = pin_champion(settings)
    chunks = [chunk.stamped("2026-10-12T00:00:00+00:00", day) for day in days
              for chunk in plan_chunks(settings, lake, day, pinned)]  # fmt: skip
    assert [c.day for c in chunks] == [days[0].isoformat()] * 4 + [days[1].isoformat()] * 4
    assert Chunk.from_dict(chunks[5].to_dict()) == chunks[5], "XCom-safe, day included"
    with pytest.raises(ValueError, match="belongs to"):
        score_chunk(settings, lake, days[1], pinned, chunks[0], "several")

    results = [score_chunk(settings, lake, dt.date.fromisoformat(str(c.day)), pinned, c, "several") for c in chunks]
    assert ChunkResult.from_dict(results[5].to_dict()) == results[5] and results[5].day == days[1].isoformat()
    for day in days:  # each commit is handed every result of the run and takes its own
        stats = commit_scores(settings, lake, day, pinned, results, "several")
        assert (stats["day"], stats["rows"], stats["chunks"]) == (day.isoformat(), ROWS, 4)
        assert _read_scores(lake, day).num_rows == ROWS and _leftovers(lake, day) == []
    assert all((scored_by(lake, day) or {}).get("run_id") == "several" for day in days)


def test_the_gate_reports_charts_are_the_champions_run_figures(home: Settings) -> None:
    """MLflow's UI shows the gate report's charts as the run's figures: one standalone SVG per chart of the page."""
    import xml.etree.ElementTree as ET

    from mlops import models

    run_id = pin_champion(home).run_id
    client = models.client(home)
    folder = models.Artifacts.GATE_REPORT_FIGURES
    logged = {Path(a.path).name for a in client.list_artifacts(run_id, folder)}
    assert {"pr-curve.svg", "calibration-curve.svg", "shap-summary.svg"} <= logged, logged
    page = models.load_text_artifact(home, run_id, models.Artifacts.GATE_REPORT_HTML)
    for name in logged:
        svg = models.load_text_artifact(home, run_id, f"{folder}/{name}")
        assert ET.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg", name  # a document of its own
        assert svg in page, f"{name} is not the page's own chart"
