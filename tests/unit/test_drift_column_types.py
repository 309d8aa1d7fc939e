"""Drift on every column type a contract accepts, through the real chain, with the Evidently report rendered.

The issue: a 500-value string column (``high_cardinality: true``, hashed by the model) made Evidently infer
"text", our PSI stattest refused it, and ``mlops drift`` failed without recording the day. Here a table with
every type (an int with nulls, a float, a bool, a low-cardinality string whose rare value grows, a
high-cardinality string with rare nulls, a float allowed to be entirely null, free text that is not a
feature, timestamps) goes through a drafted contract (``infer_contract``), validation, training, promotion
and ``check_day`` with ``render_report=True``: a clean day renders the report and records the decision; a day where the
high-cardinality string's top value doubles its share is flagged by the monitor on that feature, compared
on its top values (not on hash codes as numbers).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import yaml

from mlops.config import Settings, load_settings
from mlops.data.lake import Lake
from mlops.drift import OLD_HASHED_PROFILE, assess_window, feature_drift
from mlops.drift_report import evidently_report
from mlops.drift_report_columns import OTHER
from mlops.features import FeatureSpec, build_matrix, hash_codes
from mlops.monitoring import DriftOutcome
from mlops.profiling import TOP_K, TOP_VALUES, numeric_bins, reference_profile, top_values
from tests.unit.test_datasets import _land, _times

START = dt.date(2026, 5, 4)
TRAIN_DAYS = 3  # 1 train, 1 early-stopping, 1 holdout day
ROWS = 1_500
CLEAN, SHIFTED = START + dt.timedelta(TRAIN_DAYS), START + dt.timedelta(TRAIN_DAYS + 1)
MERCHANTS = 500
#: The merchants' head: m000 takes 25 % of the rows (50 % on the shifted day), a few more a few percent each.
HEAD = np.array([0.25, 0.06, 0.05, 0.04, 0.03])


def _merchant_probabilities(top_share: float) -> np.ndarray:
    head = np.append(top_share, HEAD[1:] * (1 - top_share) / (1 - HEAD[0]))
    tail = np.full(MERCHANTS - head.size, (1 - head.sum()) / (MERCHANTS - head.size))
    return np.concatenate([head, tail])


def _day(day: dt.date, seed: int, *, phone: float = 0.1, top_share: float = HEAD[0],
         discount_missing: float = 0.3) -> tuple[pa.Table, pa.Table]:  # fmt: skip
    rng = np.random.default_rng(seed)
    n = ROWS
    amount = rng.lognormal(3.0, 1.0, n)
    visits = rng.poisson(4, n)
    channel = rng.choice(["app", "web", "store", "phone"], n, p=[0.5 - phone / 2, 0.3, 0.2 - phone / 2, phone])
    member = rng.random(n) < 0.4
    merchant = rng.choice(MERCHANTS, n, p=_merchant_probabilities(top_share))
    logit = -1.2 + 1.6 * (channel == "web") + 1.2 * (visits < 3) + 1.0 * (merchant % 3 == 0) - 1.2 * member
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    ids = [f"K{day:%m%d}-{i:05d}" for i in range(n)]
    raw = pa.table({
        "customer_ref": pa.array(ids),
        "event_ts": pa.array(_times(day, n, rng).astype("datetime64[ms]"), pa.timestamp("ms", tz="UTC")),
        "seen_at": pa.array(_times(day, n, rng).astype("datetime64[s]"), pa.timestamp("s")),
        "amount": pa.array(amount),
        "visits": pa.array(visits, mask=rng.random(n) < 0.05),  # an int with nulls
        "discount": pa.array(rng.random(n) * 10, mask=rng.random(n) < discount_missing),  # may be entirely null
        "is_member": pa.array(member),
        "channel": pa.array(channel),
        "merchant": pa.array([f"m{m:03d}" for m in merchant], mask=rng.random(n) < 0.01),  # rare nulls
        "note": pa.array([f"order {day:%d}-{i} via {c}" for i, c in enumerate(channel)]),  # free text, no feature
    })  # fmt: skip
    return raw, pa.table({"customer_ref": ids, "churned": churned})


@dataclass
class Checked:
    settings: Settings
    clean: DriftOutcome
    shifted: DriftOutcome


#: The model file a reviewed `mlops dataset init` draft would give (tests/unit/test_datasets.py runs init itself).
MODEL = {
    "dataset": {"id_column": "customer_ref", "time_column": "event_ts",
                "label": {"column": "churned", "positive": True, "delay_days": 0},
                "features": ["amount", "visits", "discount", "is_member", "channel", "merchant"],
                "categorical": ["channel"], "slices": []},
    "training": {"window_days": 10, "holdout_days": 1, "validation_days": 1, "min_positives": 10},
    "model": {"params": {"max_depth": 3, "eta": 0.3}, "num_boost_round": 30, "early_stopping_rounds": 10,
              "nthread": 2},
    "drift": {"window_days": 1, "report_sample_rows": 300},
}  # fmt: skip


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    """Land, draft the contract, validate, train + promote on three days; then check a clean day and a shifted one."""
    from mlops.data.contract import infer_contract
    from mlops.monitoring import check_day
    from mlops.training.pipeline import run_all
    from mlops.validation import validate_and_version

    home = tmp_path_factory.mktemp("types")
    models = home / "models"
    env = {"MLOPS_HOME": str(home), "MLOPS_MODELS_DIR": str(models)}
    (models / "contracts").mkdir(parents=True)
    model = {**MODEL, "dataset": {**MODEL["dataset"], "contract": str(models / "contracts" / "types.yaml")}}
    (models / "types.yaml").write_text(yaml.safe_dump(model, sort_keys=False))
    settings = load_settings(model="types", env=env)
    lake = Lake.from_settings(settings)
    days = [_day(START + dt.timedelta(i), seed=i) for i in range(TRAIN_DAYS)]
    days.append(_day(CLEAN, seed=10, phone=0.14))  # a rare channel grows a little: no breach
    days.append(_day(SHIFTED, seed=11, top_share=0.5, discount_missing=1.0))
    for offset, (raw, labels) in enumerate(days):
        _land(lake, "raw", START + dt.timedelta(offset), raw)
        _land(lake, "labels", START + dt.timedelta(offset), labels)
    contract = infer_contract(days[0][0], settings.dataset, day=START)
    assert contract.columns["merchant"].high_cardinality and contract.columns["note"].high_cardinality
    drafted = yaml.safe_load(contract.to_yaml())
    # The producer may send no discount at all. (Validation fails min/max on an all-null column, so no range.)
    drafted["columns"]["discount"] = {"type": "float64", "nullable": True, "max_null_fraction": 1.0}
    settings.contract_path.write_text(yaml.safe_dump(drafted, sort_keys=False))
    for offset in range(len(days)):
        validate_and_version(settings, START + dt.timedelta(offset))
    training = run_all(settings, START + dt.timedelta(TRAIN_DAYS - 1), {"reason": "column types"}, actor="test")
    assert training["passed"] and not isinstance(training["promotion"], str), training["summary"]
    return Checked(settings, check_day(settings, CLEAN, render_report=True),
                   check_day(settings, SHIFTED, render_report=True))  # fmt: skip


def test_the_table_has_every_type_and_the_model_hashes_the_merchant(checked: Checked) -> None:
    from mlops.aliases import pin_champion

    features = checked.settings.dataset.features
    assert "merchant" in features and "note" not in features and "seen_at" not in features
    assert pin_champion(checked.settings).spec.hashed == ("merchant",)


def test_a_clean_day_renders_the_report_and_records_the_decision(checked: Checked) -> None:
    from mlops.drift import read_history

    outcome = checked.clean
    assert outcome.report_error is None
    assert outcome.report_uri and Path(outcome.report_uri).is_file()
    page = Path(outcome.report_uri).read_text()
    assert 'id="mlops-decision"' in page and 'id="mlops-skipped"' in page
    skipped = outcome.report_skipped
    assert set(skipped) == {"customer_ref", "event_ts", "seen_at", "note"}, skipped
    assert "timestamp" in skipped["event_ts"] and "timestamp" in skipped["seen_at"]
    assert "free text" in skipped["note"] and "id column" in skipped["customer_ref"]
    result = outcome.result
    assert not result["breached"], result["breached_features"]
    assert set(result["features"]) == set(checked.settings.dataset.features)
    merchant = result["features"]["merchant"]
    assert merchant["kind"] == TOP_VALUES and len(merchant["cur_freq"]) == TOP_K + 2  # top values, other, missing
    assert 0 < merchant["null_fraction"] < 0.05
    entry = {e["day"]: e for e in read_history(Lake.from_settings(checked.settings), "types")}[CLEAN.isoformat()]
    assert entry["report_uri"] == outcome.report_uri and entry["report_error"] is None
    assert entry["report_skipped"] == skipped and entry["breached"] is False


def test_a_shift_of_the_top_merchant_is_flagged_and_an_all_null_column_is_reported(checked: Checked) -> None:
    outcome = checked.shifted
    merchant = outcome.result["features"]["merchant"]
    assert "merchant" in outcome.result["breached_features"], outcome.result["breached_features"]
    top = int(np.argmax(merchant["ref_freq"][:TOP_K]))
    assert merchant["ref_freq"][top] == pytest.approx(0.25, abs=0.04)
    assert merchant["cur_freq"][top] == pytest.approx(0.5, abs=0.04), "the top value's share doubled"
    discount = outcome.result["features"]["discount"]
    assert discount["null_fraction"] == 1.0, "reported by the monitor"
    assert outcome.report_error is None and Path(outcome.report_uri).is_file()
    assert "entirely null in the current window" in outcome.report_skipped["discount"]
    assert outcome.result["breached"]


# -- the pieces ---------------------------------------------------------------------------------------------
def _codes(values: list[str | None]) -> np.ndarray:
    return hash_codes(pa.array(values, pa.string())).to_numpy(zero_copy_only=False).astype(np.float32)


def test_top_values_profile_and_counts_match_the_monitor() -> None:
    rng = np.random.default_rng(0)
    values = [f"v{i}" for i in rng.choice(200, 5000, p=_probabilities(200))] + [None] * 50
    spec = FeatureSpec(("shop",), {}, ("shop",))
    X = _codes(values)[:, None]
    profile = reference_profile(X, spec, np.zeros(len(values)))
    entry = profile["features"]["shop"]
    assert entry["kind"] == TOP_VALUES and len(entry["codes"]) == len(entry["freq"]) == TOP_K
    assert sum(entry["freq"]) + entry["other"] + entry["missing"] == pytest.approx(1.0)
    assert entry["missing"] == pytest.approx(50 / 5050)
    assert entry["freq"] == sorted(entry["freq"], reverse=True)
    result = feature_drift(profile, X, spec, 0.01)["shop"]
    assert result["psi"] == pytest.approx(0.0, abs=1e-12) and result["cur_freq"] == pytest.approx(
        [*entry["freq"], entry["other"], entry["missing"]], abs=1e-12)  # fmt: skip
    # a value never seen goes to "other", not to a bin of hash codes
    unseen = feature_drift(profile, _codes(["never-seen"] * 100)[:, None], spec, 0.01)["shop"]
    assert unseen["cur_freq"][TOP_K] == 1.0
    assert top_values(np.array([np.nan, np.nan]))["codes"] == [] and top_values(np.array([]))["codes"] == []


def _probabilities(n: int) -> np.ndarray:
    weights = 1 / np.arange(1, n + 1)
    return weights / weights.sum()


def test_a_profile_from_before_top_values_skips_the_hashed_feature_with_a_note(settings: Settings) -> None:
    spec = FeatureSpec(("shop", "amount"), {}, ("shop",))
    X = np.column_stack([_codes([f"s{i % 300}" for i in range(3000)]), np.arange(3000, dtype=np.float32)])
    old = {"rows": 3000, "features": {"shop": numeric_bins(X[:, 0].astype(np.float64)),
                                      "amount": numeric_bins(X[:, 1].astype(np.float64))},
           "score": numeric_bins(np.linspace(0, 1, 3000))}  # fmt: skip
    result = assess_window(settings, old, spec, X, None, None, None, "2026-05-01", ["2026-05-01"])
    assert result.features["shop"]["kind"] == "skipped" and result.features["shop"]["note"] == OLD_HASHED_PROFILE
    assert result.features["shop"]["psi"] is None and "shop" not in result.breached_features
    assert result.features["amount"]["psi"] == pytest.approx(0.0, abs=1e-12)
    assert result.to_dict()["features"]["shop"]["kind"] == "skipped"


def test_the_report_types_columns_explicitly_and_skips_what_it_cannot_judge(tmp_path: Path) -> None:
    import pandas as pd

    n = 600

    def frame(seed: int, top: float, all_null: bool) -> pd.DataFrame:
        r = np.random.default_rng(seed)
        shop = np.where(r.random(n) < top, "s000", np.array([f"s{i:03d}" for i in r.integers(1, 400, n)]))
        return pd.DataFrame({
            "shop": pd.Series(shop, dtype=object).where(r.random(n) > 0.02, None),
            "visits": pd.array(np.where(r.random(n) < 0.1, None, r.poisson(4, n)), dtype="Int64"),
            "member": r.random(n) < 0.4,
            "broken": pd.Series([None] * n if all_null else r.random(n), dtype="float64"),
            "note": [f"free text {seed}-{i}" for i in range(n)],
        })  # fmt: skip

    reference, current = frame(2, 0.25, False), frame(3, 0.5, True)
    codes = top_values(_codes(reference["shop"].tolist()))["codes"]
    types = {"shop": "top", "visits": "num", "member": "cat", "broken": "num", "note": "text"}
    summary = evidently_report(reference, current, str(tmp_path / "r.html"), seed=0, sample_rows=500,
                               method="mlops_psi", threshold=0.2, column_types=types, top_codes={"shop": codes},
                               min_drifted_columns=1)  # fmt: skip
    assert set(summary["columns"]) == {"shop", "visits", "member"}
    assert "entirely null in the current window" in summary["skipped"]["broken"]
    assert summary["skipped"]["note"] == "free text: not compared"
    assert summary["drifted_columns"] == ["shop"]
    assert summary["columns"]["visits"]["null_fraction"]["reference"] == pytest.approx(0.1, abs=0.04)
    assert OTHER in (tmp_path / "r.html").read_text(), "values outside the top ones are bucketed"
    # no column at all to judge: the caller gets an error (recorded as report_error by the drift check)
    with pytest.raises(ValueError, match="no column can be compared"):
        evidently_report(reference[["broken"]], current[["broken"]], str(tmp_path / "x.html"), seed=0,
                         sample_rows=100, column_types={"broken": "num"})  # fmt: skip


def test_a_failing_report_records_report_error_not_a_crash(checked: Checked, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops import drift_report
    from mlops.drift import read_history
    from mlops.monitoring import check_day

    def broken(*args: Any, **kwargs: Any) -> dict:
        raise RuntimeError("Stattest mlops_psi isn't applicable to feature of type text\nmore lines")

    monkeypatch.setattr(drift_report, "evidently_report", broken)
    outcome = check_day(checked.settings, CLEAN, render_report=True)
    assert outcome.report_uri is None
    assert outcome.report_error == "RuntimeError: Stattest mlops_psi isn't applicable to feature of type text"
    assert outcome.decision == checked.clean.decision
    entry = {e["day"]: e for e in read_history(Lake.from_settings(checked.settings), "types")}[CLEAN.isoformat()]
    assert entry["report_error"] == outcome.report_error and entry["triggered"] is False
    assert DriftOutcome.from_dict({k: v for k, v in outcome.to_dict().items()
                                   if k not in ("report_error", "report_skipped")}).report_error is None  # fmt: skip


def test_the_matrix_of_the_hashed_feature_is_counted_in_the_profile_buckets() -> None:
    spec = FeatureSpec(("shop",), {}, ("shop",))
    table = pa.table({"shop": ["a", "a", "b", None, "c"]})
    X = build_matrix(table, spec)
    entry = reference_profile(X, spec, np.zeros(5))["features"]["shop"]
    assert entry["freq"][0] == pytest.approx(0.4) and entry["missing"] == pytest.approx(0.2)
    assert sum(entry["freq"]) + entry["other"] == pytest.approx(0.8)
