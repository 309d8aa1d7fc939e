"""``mlops.airflow``: the error mapping, a run's settings, the partition day and the shared DAG keywords."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from mlops.config import ConfigError, load_settings
from mlops.errors import InfrastructureError, InputError


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """``mlops.airflow``, imported once a throwaway AIRFLOW_HOME is set (Airflow reads it on first import)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow")))
        patch.setenv("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
        import mlops.airflow

        yield mlops.airflow


class NoSuchDay(InputError):
    pass


class LakeDown(InfrastructureError):
    pass


def _raising(error: Exception) -> Any:
    def body(day: str, params: dict | None = None, ti: Any = None) -> str:
        """A task body."""
        raise error

    return body


def test_input_errors_fail_fast_with_one_line(adapters: ModuleType) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException) as failed:
        adapters.error_policy(_raising(NoSuchDay("raw/dt=2026-11-10 breaks rule [type] column 'amount'")))("d")
    assert str(failed.value) == "NoSuchDay: raw/dt=2026-11-10 breaks rule [type] column 'amount'"
    assert failed.value.__suppress_context__, "no chained traceback: the one line is the message"


@pytest.mark.parametrize("error", [LakeDown("S3 timed out"), OSError("disk full"), KeyError("a bug")])
def test_other_errors_are_re_raised_as_is_for_retries(adapters: ModuleType, error: Exception) -> None:
    with pytest.raises(type(error)) as raised:
        adapters.error_policy(_raising(error))("d")
    assert raised.value is error


def test_error_policy_keeps_what_taskflow_reads(adapters: ModuleType) -> None:
    body = _raising(ValueError())
    wrapped = adapters.error_policy(body)
    assert wrapped.__name__ == "body" and wrapped.__doc__ == "A task body."
    assert inspect.signature(wrapped) == inspect.signature(body)  # TaskFlow injects params, ti... by name
    assert getattr(wrapped, adapters.errors.MARKER)
    assert adapters.error_policy(lambda: 42)() == 42


def test_run_settings_apply_the_runs_config_overrides(adapters: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    ti = SimpleNamespace(dag_id="card_transactions__continuous_training")
    conf = {"model": {"num_boost_round": 50}, "training": {"window_days": 14}}
    monkeypatch.setattr(adapters.runs, "get_current_context", lambda: {"ti": ti, "params": {"config": conf}})
    settings = adapters.run_settings()
    assert settings.model.num_boost_round == 50 and settings.training.window_days == 14

    # What only the deployment may set is refused, naming the key (the allow-list).
    forbidden = {"ti": ti, "params": {"config": {"gates": {"champion_tolerance": 1.0}}}}
    monkeypatch.setattr(adapters.runs, "get_current_context", lambda: forbidden)
    with pytest.raises(ConfigError, match="gates"):
        adapters.run_settings()

    monkeypatch.setattr(adapters.runs, "get_current_context", lambda: {"ti": ti, "params": {"date": None}})
    assert adapters.run_settings() == load_settings(model="card_transactions")


def test_a_task_reads_the_model_file_its_dag_id_names(
    adapters: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "fraud.yaml").write_text("training: {window_days: 11}\n")
    (models / "churn.yaml").write_text("training: {window_days: 22}\ndataset: {id_column: customer_id}\n")
    monkeypatch.setenv("MLOPS_MODELS_DIR", str(models))
    for dag_id, window, id_column in (("fraud__batch_scoring", 11, "transaction_id"),
                                      ("churn__drift_monitoring", 22, "customer_id")):  # fmt: skip
        context = {"ti": SimpleNamespace(dag_id=dag_id), "params": {}}
        monkeypatch.setattr(adapters.runs, "get_current_context", lambda context=context: context)
        settings = adapters.run_settings()
        assert (settings.model_name, settings.training.window_days, settings.dataset.id_column) == (
            dag_id.split("__")[0], window, id_column)  # fmt: skip


def _run(run_type: Any = "scheduled", logical: dt.datetime | None = None, after: dt.datetime | None = None) -> Any:
    return SimpleNamespace(run_type=run_type, logical_date=logical, run_after=after)


def _events(*dates: str | None) -> dict[str, list[Any]]:
    return {"validated": [SimpleNamespace(extra={"date": day} if day else {}) for day in dates]}


NOV_10 = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)


def test_run_days_named_by_params_date_is_that_day_only_and_forced(adapters: ModuleType) -> None:
    requested = adapters.run_days({"date": "2026-11-01"}, _run("asset_triggered", NOV_10), _events("2026-11-08"))
    assert requested.days == ["2026-11-01"] and requested.forced is True
    assert requested.up_to == "2026-11-01", "a re-run of an old day never judges the days after it"


def test_run_days_of_asset_events_are_their_dates_sorted_once_each(adapters: ModuleType) -> None:
    events = _events("2026-11-08", "2026-11-06", "2026-11-08", "2026-11-07")
    events["other"] = [SimpleNamespace(extra={"date": "2026-11-06"}), SimpleNamespace(extra=None)]
    requested = adapters.run_days({"date": None}, _run("asset_triggered", NOV_10), events)
    assert requested.days == ["2026-11-06", "2026-11-07", "2026-11-08"]
    assert requested.up_to == "2026-11-10", "an event without a date (the 'other' one) names no day: up to today"
    assert requested.forced is False, "a day already done is not redone because an event named it again"
    dated = adapters.run_days({}, _run("asset_triggered", NOV_10), _events("2026-11-08", "2026-11-06"))
    assert dated.up_to == "2026-11-08", "dated events only: up to the newest of them"


def test_run_days_of_an_asset_event_without_a_date_is_no_day(adapters: ModuleType) -> None:
    """A champion change triggers the run without naming a day: nothing is scored, not the logical date."""
    requested = adapters.run_days({}, _run("asset_triggered", NOV_10), _events(None))
    assert requested.days == [] and requested.forced is False
    assert requested.up_to == "2026-11-10", "its backlog: every waiting day up to the day it started"
    # A champion change queued together with a day's validated-data event: every waiting day, not up to that day.
    mixed = {**_events("2026-11-02"), "champion": [SimpleNamespace(extra={"version": "1"})]}
    requested = adapters.run_days({}, _run("asset_triggered", NOV_10), mixed)
    assert requested.days == ["2026-11-02"] and requested.up_to == "2026-11-10"
    # Airflow may hand the events over empty: an asset-triggered run still scores no day of its own.
    assert adapters.run_days({}, _run("asset_triggered", NOV_10), {}).days == []


@pytest.mark.parametrize("kind", ["scheduled", "backfill", "manual"])
def test_run_days_of_other_runs_is_their_logical_date(adapters: ModuleType, kind: str) -> None:
    requested = adapters.run_days({}, _run(kind, NOV_10, NOV_10 + dt.timedelta(days=1)), None)
    assert requested.days == ["2026-11-10"] and requested.forced is False
    assert requested.up_to == "2026-11-10", "a backfill of an old date works on days up to it, not up to today"
    # Without a logical date (e.g. a manual run triggered without one) the run is for the day it ran after.
    unscheduled = _run(kind, None, dt.datetime(2026, 11, 12, 6, tzinfo=dt.UTC))
    assert adapters.run_days({}, unscheduled, {}).days == ["2026-11-12"]


@pytest.mark.parametrize(
    "form", ["airflow-enum", "enum-like", "DagRunType.ASSET_TRIGGERED", "asset_triggered", "DagRunType.SCHEDULED"]
)
def test_run_days_reads_the_run_type_as_enum_or_string(adapters: ModuleType, form: str) -> None:
    """Whatever form Airflow gives the run type in, an asset-triggered run is not taken for a scheduled one."""
    from airflow.utils.types import DagRunType

    kind = {"airflow-enum": DagRunType.ASSET_TRIGGERED, "enum-like": SimpleNamespace(value="asset_triggered")}
    requested = adapters.run_days({}, _run(kind.get(form, form), NOV_10), {})
    if form == "DagRunType.SCHEDULED":
        assert requested.days == ["2026-11-10"], "a scheduled run scores its logical date"
    else:
        assert requested.days == [], "an asset-triggered run without a dated event scores no day"


def test_max_map_length_follows_airflows_setting(adapters: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """How many chunks one scoring run may map is Airflow's ``[core] max_map_length``, as the deployment set it."""
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "7")
    assert adapters.runs.max_map_length() == 7
    monkeypatch.delenv("AIRFLOW__CORE__MAX_MAP_LENGTH")
    assert adapters.runs.max_map_length() == 1024


def test_dag_defaults_share_start_tags_and_retrying_task_args(adapters: ModuleType) -> None:
    settings = load_settings(conf={"model": {"name": "fraud"}, "dags": {"max_active_tasks": 3, "pool": "fraud_pool"}})
    defaults = adapters.dag_defaults(settings, "scoring", "xgboost", retries=1,
                                     execution_timeout=dt.timedelta(minutes=5))  # fmt: skip
    assert defaults["tags"] == ["mlops", "fraud", "scoring", "xgboost"]  # the model's name: the UI filter
    assert defaults["max_active_tasks"] == 3 and defaults["default_args"]["pool"] == "fraud_pool"
    assert defaults["start_date"] == adapters.START_DATE and defaults["catchup"] is False
    args = defaults["default_args"]
    assert args["owner"] == "mlops" and args["retries"] == 1 and args["retry_exponential_backoff"] is True
    assert args["execution_timeout"] == dt.timedelta(minutes=5)
    assert adapters.default_args()["retries"] >= 1
