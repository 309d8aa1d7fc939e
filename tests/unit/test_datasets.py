"""Bring your own data: tables no generator here made go through the whole chain by config alone.

For each table: land daily partitions (raw and labels) in the new model's lake as a producer would,
`mlops dataset init` on the first day (it writes the model file into the models folder and its contract
beside it), then the user's own training/gates sections added to the drafted model file
(``tests/unit/datasets/<name>.yaml``), and the same functions the DAGs run: validate every day, train,
gates, promote, score, drift check. No code knows these tables.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml

from mlops.aliases import pin_champion
from mlops.cli import main
from mlops.config import Settings, load_settings
from mlops.data.contract import Contract
from mlops.data.lake import SUCCESS, VALIDATED, Lake
from mlops.data.publish import publish_partition
from mlops.datasets import Choices, contract_ref, default_outputs, init_dataset, model_settings
from mlops.features import FeatureSpec, binary_labels, build_matrix, feature_spec, hash_codes, labelled_rows
from mlops.validation import validate_partition

CONFIGS = Path(__file__).parent / "datasets"
START = dt.date(2026, 3, 2)
DAYS = 4  # a small window: 2 train days, 1 early-stopping day, 1 holdout day (the scored, drift-checked one)


@dataclass
class Table:
    """A table laid out as daily partitions, and the flags a user passes to `mlops dataset init` for it."""

    days: list[tuple[dt.date, pa.Table, pa.Table]]  # day, raw partition, labels partition
    flags: list[str] = field(default_factory=list)


def _daily(frame_rows: int, days: int, seed: int) -> list[np.ndarray]:
    """Row indices of a shuffled table split into ``days`` nearly equal days."""
    return np.array_split(np.random.default_rng(seed).permutation(frame_rows), days)


def _times(day: dt.date, rows: int, rng: np.random.Generator) -> np.ndarray:
    """Event times within ``day`` (UTC), at nanosecond resolution, sorted."""
    start = np.datetime64(day.isoformat(), "ns")
    return np.sort(start + rng.integers(0, 86_400 * 10**9, rows).astype("timedelta64[ns]"))


def digits_table() -> Table:
    """scikit-learn's 8x8 digits: int64 ids, naive ns timestamps, int8 pixels; the label is the digit (0-9),
    made binary by config alone (`--positive 3`: a 3 against the rest); the label feed's ids are int32."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    rng = np.random.default_rng(1)
    days = []
    for offset, rows in enumerate(_daily(len(bunch.target), DAYS, seed=1)):
        day = START + dt.timedelta(days=offset)
        ids = rows.astype(np.int64) + 100_000
        columns: dict[str, pa.Array] = {
            "sample_id": pa.array(ids),
            "scanned_at": pa.array(_times(day, len(rows), rng), pa.timestamp("ns")),
        }
        for j, name in enumerate(bunch.feature_names):
            columns[name] = pa.array(bunch.data[rows, j].astype(np.int8))
        labels = pa.table({"sample_id": pa.array(ids, pa.int32()), "digit": pa.array(bunch.target[rows])})
        days.append((day, pa.table(columns), labels))
    return Table(days, ["--positive", "3"])


def breast_cancer_table() -> Table:
    """scikit-learn's breast-cancer table: string ids, second-precision New York times, column names with
    spaces, string labels (`--positive malignant`)."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    rng = np.random.default_rng(2)
    days = []
    for offset, rows in enumerate(_daily(len(bunch.target), DAYS, seed=2)):
        day = START + dt.timedelta(days=offset)
        ids = [f"BC-{i:04d}" for i in rows]
        times = pa.array(_times(day, len(rows), rng).astype("datetime64[s]"), pa.timestamp("s", tz="America/New_York"))
        columns = {"case_id": pa.array(ids), "examined_at": times}
        columns.update({name: pa.array(bunch.data[rows, j]) for j, name in enumerate(bunch.feature_names)})
        diagnosis = np.asarray(bunch.target_names)[bunch.target[rows]]
        days.append((day, pa.table(columns), pa.table({"case_id": ids, "diagnosis": diagnosis.tolist()})))
    return Table(days, ["--positive", "malignant"])


def customers_table() -> Table:
    """A churn table: string ids, millisecond Tokyo timestamps, a date, float32 with nulls, int32 with nulls,
    a 500-level merchant, a dictionary-encoded region with nulls, a bool, free text unique per row, a bool
    label, and on the last day an extra column the contract allows (`--extra-columns allow`)."""
    rng = np.random.default_rng(3)
    days = []
    for offset in range(DAYS):
        day = START + dt.timedelta(days=offset)
        n = 1_200
        amount = rng.lognormal(3.0, 1.0, n).astype(np.float32)
        visits = rng.poisson(4, n).astype(np.int32)
        merchant = rng.integers(0, 500, n)
        channel = rng.choice(["app", "web", "store", "phone"], n)
        member = rng.random(n) < 0.4
        logit = (-1.6 + 1.4 * (channel == "web") + 1.0 * (visits < 3) + 1.0 * (merchant < 100) - 1.2 * member
                 + 0.4 * (np.log(amount) - 3.0))  # fmt: skip
        churned = rng.random(n) < 1 / (1 + np.exp(-logit))
        amount_missing, visits_missing = rng.random(n) < 0.08, rng.random(n) < 0.05
        region_missing = rng.random(n) < 0.03
        ids = [f"C{day:%m%d}-{i:05d}" for i in range(n)]
        times = pa.array(_times(day, n, rng).astype("datetime64[ms]"), pa.timestamp("ms")).cast(
            pa.timestamp("ms", tz="Asia/Tokyo")
        )
        columns = {
            "customer_ref": pa.array(ids),
            "event_ts": times,
            "signup_date": pa.array(
                np.datetime64("2020-01-01") + rng.integers(0, 2000, n).astype("timedelta64[D]"), pa.date32()
            ),  # fmt: skip
            "amount": pa.array(amount, mask=amount_missing),
            "visits": pa.array(visits, mask=visits_missing),
            "merchant": pa.array([f"m{m:03d}" for m in merchant]),
            "channel": pa.array(channel),
            "region": pa.array(
                rng.choice(["north", "south", "east", "west", "centre", "islands"], n), mask=region_missing
            ).dictionary_encode(),  # fmt: skip
            "is_member": pa.array(member),
            "note": pa.array([f"order {offset}-{i} via {c}" for i, c in enumerate(channel)]),
        }
        if offset == DAYS - 1:
            columns["promo_code"] = pa.array(rng.choice(["", "SPRING", "VIP"], n))
        days.append((day, pa.table(columns), pa.table({"customer_ref": ids, "churned": churned})))
    return Table(days, ["--extra-columns", "allow"])


TABLES: dict[str, Callable[[], Table]] = {
    "digits": digits_table,
    "breast_cancer": breast_cancer_table,
    "customers": customers_table,
}
#: What `dataset init` must have guessed (or been told) for each table.
EXPECTED = {
    "digits": {"id_column": "sample_id", "time_column": "scanned_at", "label": {"column": "digit", "positive": 3}},
    "breast_cancer": {
        "id_column": "case_id",
        "time_column": "examined_at",
        "label": {"column": "diagnosis", "positive": "malignant"},
    },  # fmt: skip
    "customers": {
        "id_column": "customer_ref",
        "time_column": "event_ts",
        "label": {"column": "churned", "positive": True},
    },  # fmt: skip
}
RENDERED = "breast_cancer"  # the one table whose drift check renders the Evidently report (time budget)


def _land(lake: Lake, area: str, day: dt.date, table: pa.Table) -> None:
    partition = lake.partition(area, day)
    publish_partition(lake, partition, lambda staging: lake.write_parquet(table, f"{staging}/part-00000.parquet"))


def _cli(home: Path, *argv: str, models: Path | None = None) -> tuple[int, str]:
    """Run `mlops ...` in-process as a user would, with only MLOPS_HOME (and the models folder) set."""
    out = io.StringIO()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_CONFIG", "MLOPS__", "MLOPS_MODEL"))}
    env = {**env, "MLOPS_HOME": str(home), **({"MLOPS_MODELS_DIR": str(models)} if models else {})}
    with mock.patch.dict(os.environ, env, clear=True), contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


@dataclass
class Chain:
    name: str
    table: Table
    settings: Settings
    init: dict[str, Any]
    markers: list[dict[str, Any]]
    training: dict[str, Any]
    scores: dict[str, Any]
    drift: Any


@pytest.fixture(scope="module", params=sorted(TABLES))
def chain(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    """The whole chain on one table: land, init, validate every day, train + gates + promote, score, drift."""
    from mlops.monitoring import check_day
    from mlops.scoring import score_day
    from mlops.training.pipeline import run_all
    from mlops.validation import validate_and_version

    name = request.param
    home = tmp_path_factory.mktemp(name)
    models = home / "models"  # the deployment's models folder (MLOPS_MODELS_DIR)
    env = {"MLOPS_HOME": str(home), "MLOPS_MODELS_DIR": str(models)}
    table = TABLES[name]()
    lake = Lake.from_settings(load_settings(env=env, conf={"dataset": {"name": name}}))  # the model's own lake
    for day, raw, labels in table.days:
        _land(lake, "raw", day, raw)
        _land(lake, "labels", day, labels)

    first, last = table.days[0][0], table.days[-1][0]
    code, out = _cli(home, "--json", "dataset", "init", "--name", name, "--date", first.isoformat(), *table.flags,
                     models=models)  # fmt: skip
    assert code == 0, out
    model_file = models / f"{name}.yaml"
    config = {**yaml.safe_load(model_file.read_text()), **yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())}
    model_file.write_text(yaml.safe_dump(config, sort_keys=False))  # the user's review: training and gates
    settings = load_settings(model=name, env=env)

    markers = [validate_and_version(settings, day) for day, _, _ in table.days]
    training = run_all(settings, last, {"reason": f"bring your own data: {name}"}, actor="test")
    scores = score_day(settings, last, run_id="byod")
    drift = check_day(settings, last, render_report=name == RENDERED)
    return Chain(name, table, settings, json.loads(out), markers, training, scores, drift)


# -- the chain, per table ------------------------------------------------------------------------------
def test_init_drafts_config_and_a_contract_that_accepts_its_own_day(chain: Chain) -> None:
    dataset = chain.init["dataset"]
    for key, value in EXPECTED[chain.name].items():
        assert (dataset[key] if key != "label" else {k: dataset["label"][k] for k in value}) == value, key
    first_day = chain.table.days[0][0].isoformat()
    assert f"raw/dt={first_day}:" in chain.init["verdict"] and "passed contract" in chain.init["verdict"]
    models = chain.settings.models_path
    written = {
        "model": str(models / f"{chain.name}.yaml"),
        "contract": str(models / "contracts" / f"{chain.name}.yaml"),
    }
    assert chain.init["written"] == written, "the model file in the models folder, its contract beside them"
    assert dataset["contract"] == f"contracts/{chain.name}.yaml" and "name" not in dataset, "named by its file"
    assert chain.settings.contract_path == models / "contracts" / f"{chain.name}.yaml"
    assert chain.settings.dag_id("batch_scoring") == f"{chain.name}__batch_scoring"
    rate = chain.init["positive_rate"]
    drafted = chain.init["gates"] or {}  # the default absolute gates are relative to the positive rate: not drafted
    assert 0 < rate < 1 and "absolute" not in drafted
    if dataset["slices"]:
        assert drafted["slice_min_rows"] < 500, "slice gates sized to a small holdout"
    assert set(chain.init["training"]) == {"window_days", "holdout_days", "validation_days", "min_positives"}
    contract = Contract.load(chain.settings.contract_path)
    raw = chain.table.days[0][1]
    assert list(contract.columns) == raw.column_names
    assert chain.settings.dataset.features == dataset["features"], "the chain ran on the drafted block, unedited"
    review = "\n".join(chain.init["review"])
    for column, rule in contract.columns.items():
        if rule.min is not None:
            assert f"  {column}: observed [" in review, f"the range of {column} is listed for review"


def test_every_day_validates_under_the_drafted_contract(chain: Chain) -> None:
    lake = Lake.from_settings(chain.settings)
    days = [day for day, _, _ in chain.table.days]
    assert lake.days("raw", VALIDATED) == days
    assert [marker["rows"] for marker in chain.markers] == [raw.num_rows for _, raw, _ in chain.table.days]


def test_a_model_trains_passes_its_gates_and_is_promoted(chain: Chain) -> None:
    training = chain.training
    assert training["passed"], training["summary"]
    assert not isinstance(training["promotion"], str), training["promotion"]
    champion = pin_champion(chain.settings)
    assert champion.version == training["version"]
    assert list(champion.spec.names) == chain.settings.dataset.features


def test_the_last_day_is_scored_row_for_row(chain: Chain) -> None:
    lake = Lake.from_settings(chain.settings)
    day, raw, _ = chain.table.days[-1]
    assert lake.exists(lake.marker("scores", day, SUCCESS))
    scores = lake.read_partition(lake.partition("scores", day))
    id_column = chain.settings.dataset.id_column
    assert chain.scores["rows"] == scores.num_rows == raw.num_rows
    assert scores.schema.field(id_column).type == raw.schema.field(id_column).type
    assert sorted(scores.column(id_column).to_pylist()) == sorted(raw.column(id_column).to_pylist())
    assert 0.0 < chain.scores["positive_rate"] < 1.0


def test_drift_check_reads_every_feature_and_the_delayed_labels(chain: Chain) -> None:
    result = chain.drift.result
    assert set(result["features"]) == set(chain.settings.dataset.features)
    assert result["performance"] is not None, "labels of the day joined the scores"
    assert result["performance"]["auc_pr"] > 0.3
    if chain.name == RENDERED:
        assert chain.drift.report_uri and Path(chain.drift.report_uri).is_file()
    else:
        assert chain.drift.report_uri is None


@pytest.mark.parametrize("chain", ["customers"], indirect=True)
def test_customers_types_are_handled_not_rejected(chain: Chain) -> None:
    contract = Contract.load(chain.settings.contract_path)
    columns = contract.columns
    assert columns["merchant"].high_cardinality and columns["merchant"].allowed is None
    assert columns["region"].allowed == ["centre", "east", "islands", "north", "south", "west"]
    assert columns["amount"].nullable and columns["amount"].max_null_fraction >= 0.08
    assert (columns["visits"].type, columns["amount"].type, columns["event_ts"].type) == ("int64", "float64",
                                                                                          "timestamp")  # fmt: skip
    assert contract.extra_columns == "allow" and "promo_code" not in columns
    features = chain.settings.dataset.features
    assert "merchant" in features and "note" not in features and "signup_date" not in features
    assert chain.settings.dataset.slices == ["channel", "region"]
    assert pin_champion(chain.settings).spec.hashed == ("merchant",)


# -- the pieces, on small tables ------------------------------------------------------------------------------
def _settings_for(home: Path, contract: Path, **dataset: Any) -> Settings:
    config = home / "config.yaml"
    block = {"name": "t", "id_column": "id", "time_column": "ts", "label": {"column": "y"}, "categorical": [],
             "slices": [], "contract": str(contract), **dataset}  # fmt: skip
    config.write_text(yaml.safe_dump({"dataset": block}))
    return load_settings(env={"MLOPS_HOME": str(home), "MLOPS_CONFIG": str(config)})


def test_timestamps_of_any_unit_and_zone_and_narrow_types_validate(tmp_path: Path) -> None:
    """The issue's report: a contract inferred from a microsecond time column rejected its own partition."""
    from mlops.data.contract import infer_contract

    base = np.datetime64("2026-03-02T10:00:00", "ns") + np.arange(50).astype("timedelta64[s]")
    raw = pa.table({
        "id": pa.array(np.arange(50), pa.int32()),
        "ts": pa.array(base.astype("datetime64[us]"), pa.timestamp("us")),
        "ts_s": pa.array(base.astype("datetime64[s]"), pa.timestamp("s", tz="Europe/Paris")),
        "ts_ms": pa.array(base.astype("datetime64[ms]"), pa.timestamp("ms", tz="UTC")),
        "ts_ns": pa.array(base, pa.timestamp("ns", tz="America/New_York")),
        "day": pa.array(base.astype("datetime64[D]"), pa.date32()),
        "small": pa.array(np.arange(50), pa.uint16()),
        "ratio": pa.array(np.linspace(0, 1, 50), pa.float32()),
        "kind": pa.array(["a", "b"] * 25).dictionary_encode(),
    })  # fmt: skip
    settings = _settings_for(tmp_path, tmp_path / "contract.yaml")
    lake = Lake.from_settings(settings)
    _land(lake, "raw", START, raw)
    contract = infer_contract(raw, settings.dataset)
    (tmp_path / "contract.yaml").write_text(contract.to_yaml())
    assert {n: r.type for n, r in contract.columns.items() if n.startswith(("ts", "day"))} == dict.fromkeys(
        ["ts", "ts_s", "ts_ms", "ts_ns", "day"], "timestamp"
    )
    verdict = validate_partition(settings, START, lake, render_docs=False)
    assert verdict.passed, verdict.summary()

    # Normalising units is not blindness: a time column that arrives as text still fails, named.
    _land(lake, "raw", START, raw.set_column(1, "ts", pc.cast(raw.column("ts"), pa.string())))
    verdict = validate_partition(settings, START, lake, render_docs=False)
    assert [(f.rule, f.column) for f in verdict.failures] == [("type", "ts")]


@pytest.mark.parametrize(
    ("values", "positive", "expected"),
    [
        (pa.array([0, 1, 1], pa.int8()), 1, [0, 1, 1]),
        (pa.array([0, 1, 1]), "1", [0, 1, 1]),
        (pa.array([3, 5, 3]), 3, [1, 0, 1]),  # one class against the rest
        (pa.array([True, False, True]), 1, [1, 0, 1]),  # YAML `positive: true` arrives as 1
        (pa.array([True, False, True]), "false", [0, 1, 0]),
        (pa.array(["yes", "no", "no"]), "yes", [1, 0, 0]),
        (pa.array(["yes", "no", "no"]).dictionary_encode(), "yes", [1, 0, 0]),
    ],
)
def test_labels_as_users_have_them(values: pa.Array, positive: Any, expected: list[int]) -> None:
    assert binary_labels(values, positive).tolist() == expected


def test_an_unquoted_yaml_yes_is_refused_with_a_hint() -> None:
    with pytest.raises(ValueError, match=r"holds strings .*'no', 'yes'.*quoted in YAML"):
        binary_labels(pa.array(["yes", "no"]), 1, "churned")


def test_null_labels_are_unlabelled_rows_and_label_ids_take_the_raw_type() -> None:
    labels = pa.table({"id": pa.array([1, 2, 3], pa.int32()), "y": pa.array([True, None, False])})
    rows = labelled_rows(labels, "id", "y", pa.int64())
    assert rows.column("id").to_pylist() == [1, 3] and rows.schema.field("id").type == pa.int64()


def test_nan_labels_are_unlabelled_rows_and_extra_label_columns_are_dropped() -> None:
    labels = pa.table({"id": [1, 2, 3, 4], "y": pa.array([1.0, float("nan"), None, 0.0]), "source": ["a"] * 4})
    rows = labelled_rows(labels, "id", "y", pa.int64())
    assert rows.column_names == ["id", "y"] and rows.column("id").to_pylist() == [1, 4]


def test_a_label_feed_in_files_of_different_widths_and_columns_is_read_whole(tmp_path: Path) -> None:
    """A producer's deliveries differ: an int32 id in one file, int64 and an extra column in the next."""
    lake = Lake.from_settings(load_settings(env={"MLOPS_HOME": str(tmp_path)}))
    first = pa.table({"id": pa.array([1, 2], pa.int32()), "y": [True, False]})
    second = pa.table({"id": pa.array([3], pa.int64()), "y": [True], "resolved_at": pa.array([1], pa.int64())})

    def write(staging: str) -> None:
        lake.write_parquet(first, f"{staging}/part-00000.parquet")
        lake.write_parquet(second, f"{staging}/part-00001.parquet")

    publish_partition(lake, lake.partition("labels", START), write)
    table = lake.read_partition(lake.partition("labels", START))
    assert table.column("id").to_pylist() == [1, 2, 3] and table.schema.field("id").type == pa.int64()
    assert labelled_rows(table, "id", "y", pa.int64()).num_rows == 3


def test_high_cardinality_strings_are_hashed_stably_and_nulls_are_missing(tmp_path: Path) -> None:
    contract_path = tmp_path / "contract.yaml"
    contract_path.write_text(
        "name: t\nversion: '1'\ncolumns:\n  id: {type: int64, unique: true}\n  ts: {type: timestamp}\n"
        "  shop: {type: string, high_cardinality: true, nullable: true}\n  seen_at: {type: timestamp}\n"
        "  amount: {type: float64, nullable: true}\n"
    )
    settings = _settings_for(tmp_path, contract_path, features="auto")
    spec = feature_spec(settings, Contract.load(contract_path))
    assert spec == FeatureSpec(("shop", "amount"), {}, ("shop",)), "auto skips timestamps, hashes the shop"
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    batch = pa.table(
        {"shop": ["s1", None, "never-seen", "s1"], "amount": pa.array([1.5, None, 2.0, 3.0], pa.float32())}
    )
    matrix = build_matrix(batch, spec)
    assert matrix[0, 0] == matrix[3, 0] and np.isnan(matrix[1, 0]) and np.isfinite(matrix[2, 0])
    assert np.isnan(matrix[1, 1])
    assert hash_codes(pa.array(["s1"])).to_pylist() == [matrix[0, 0]], "the same code in every process and batch"


def test_a_string_feature_without_categories_is_named(tmp_path: Path) -> None:
    contract_path = tmp_path / "contract.yaml"
    contract_path.write_text("name: t\nversion: '1'\ncolumns: {id: {type: int64}, ts: {type: timestamp}, "
                             "shop: {type: string}}\n")  # fmt: skip
    with pytest.raises(ValueError, match=r"'shop' needs `allowed` values .* or `high_cardinality: true`"):
        feature_spec(_settings_for(tmp_path, contract_path), Contract.load(contract_path))


def test_init_asks_for_what_the_data_cannot_tell(tmp_path: Path) -> None:
    """Guesses only when one answer is left; otherwise the error names the candidates and the flag."""
    settings = load_settings(env={"MLOPS_HOME": str(tmp_path)})
    lake = Lake.from_settings(model_settings(settings, "orders"))  # the new model's lake: $MLOPS_HOME/lake/orders
    assert lake.url(lake.area("raw")) == str(tmp_path / "lake" / "orders" / "raw")
    base = np.datetime64("2026-03-02", "ms") + np.arange(20).astype("timedelta64[m]")
    raw = pa.table({"order_id": np.arange(20), "created_at": pa.array(base), "paid_at": pa.array(base),
                    "x": np.arange(20) * 1.5})  # fmt: skip
    _land(lake, "raw", START, raw)
    outputs = {"contract_out": tmp_path / "c.yaml", "model_out": tmp_path / "orders.yaml"}
    with pytest.raises(ValueError, match="no labels/ partition"):
        init_dataset(settings, "orders", START, Choices(), **outputs)
    _land(lake, "labels", START, pa.table({"order_id": np.arange(20), "grade": np.arange(20) % 3}))
    with pytest.raises(ValueError, match=r"event-time column, candidates: \['created_at', 'paid_at'\]; pass --time"):
        init_dataset(settings, "orders", START, Choices(), **outputs)
    argv = ["dataset", "init", "--name", "orders", "--date", START.isoformat(), "--contract-out",
            str(outputs["contract_out"]), "--model-out", str(outputs["model_out"])]  # fmt: skip
    assert _cli(tmp_path, *argv)[0] == 2, "a usage error"
    with pytest.raises(ValueError, match=r"positive class of label column 'grade' \(values \['0', '1', '2'\]\)"):
        init_dataset(settings, "orders", START, Choices(time_column="created_at"), **outputs)
    assert not outputs["contract_out"].exists() and not outputs["model_out"].exists()
    with pytest.raises(ValueError, match=r"--name 'my__orders': a model name must match .* without '__'"):
        init_dataset(settings, "my__orders", START, Choices(time_column="created_at"), **outputs)


def test_init_writes_into_the_models_folder_and_names_the_contract_from_there(tmp_path: Path) -> None:
    """The project's own folder keeps contracts in include/contracts; another folder keeps them beside the models."""
    from mlops.config import PROJECT_ROOT

    project = load_settings(env={"MLOPS_HOME": str(tmp_path)})
    assert default_outputs(project, "orders") == (PROJECT_ROOT / "include" / "models" / "orders.yaml",
                                                  PROJECT_ROOT / "include" / "contracts" / "orders.yaml")  # fmt: skip
    assert contract_ref(*reversed(default_outputs(project, "orders"))) == "include/contracts/orders.yaml"
    elsewhere = load_settings(env={"MLOPS_HOME": str(tmp_path), "MLOPS_MODELS_DIR": str(tmp_path / "models")})
    model_file, contract = default_outputs(elsewhere, "orders")
    assert (model_file, contract) == (tmp_path / "models" / "orders.yaml", tmp_path / "models" / "contracts" /
                                      "orders.yaml")  # fmt: skip
    assert contract_ref(contract, model_file) == "contracts/orders.yaml"
    assert contract_ref(tmp_path / "c.yaml", model_file) == str(tmp_path / "c.yaml")

    lake = Lake.from_settings(model_settings(elsewhere, "orders"))
    ts = pa.array(np.datetime64("2026-03-02", "ms") + np.arange(40).astype("timedelta64[m]"))
    _land(lake, "raw", START, pa.table({"order_id": np.arange(40), "created_at": ts, "x": np.arange(40) * 1.5}))
    _land(lake, "labels", START, pa.table({"order_id": np.arange(40), "late": np.arange(40) % 4 == 0}))
    model_file.parent.mkdir()
    model_file.write_text("dataset: {}\n")
    with pytest.raises(ValueError, match="orders.yaml exists; pass --force"):
        init_dataset(elsewhere, "orders", START, Choices())
    draft = init_dataset(elsewhere, "orders", START, Choices(), force=True)
    assert draft.written == {"contract": str(contract), "model": str(model_file)}
    loaded = load_settings(
        model="orders", env={"MLOPS_HOME": str(tmp_path), "MLOPS_MODELS_DIR": str(model_file.parent)}
    )
    assert (loaded.dataset.id_column, loaded.dataset.label.positive, loaded.contract_path) == ("order_id", True,
                                                                                                contract)  # fmt: skip
    assert draft.gates is None, "no slices: no slice gate to size; the absolute defaults fit any positive rate"
    assert loaded.training.holdout_days == draft.training["holdout_days"]
