"""Settings layering (defaults < YAML < env < run overrides), the run allow-list, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.config import (
    ConfigError,
    check_run_overrides,
    load_settings,
    model_names,
    model_of_dag,
    resolve_model,
    run_overrides_schema,
)


def test_defaults_put_everything_under_mlops_home(tmp_path: Path) -> None:
    settings = load_settings(env={"MLOPS_HOME": str(tmp_path)})
    assert settings.lake_uri == str(tmp_path / "lake" / "card_transactions")  # one lake folder per model
    assert settings.dvc_remote_url == str(tmp_path / "dvc-remote")
    assert settings.dvc_registry_path == tmp_path / "data-registry"
    assert settings.mlflow_tracking_uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert settings.training.backend == "local" and settings.promotion.policy == "auto"
    assert settings.contract_path.is_file()


def test_layers_override_in_order(tmp_path: Path) -> None:
    config = tmp_path / "mlops.yaml"
    config.write_text("dataset:\n  label: {delay_days: 5}\n  slices: [country]\ntraining: {window_days: 14}\n")
    env = {
        "MLOPS_HOME": str(tmp_path),
        "MLOPS_CONFIG": str(config),
        "MLOPS__TRAINING__WINDOW_DAYS": "21",
        "MLOPS_TRAINING_BACKEND": "kubernetes",
    }
    settings = load_settings(conf={"training": {"holdout_days": 2}}, env=env)
    assert settings.dataset.label.delay_days == 5  # YAML over defaults
    assert settings.dataset.slices == ["country"]
    assert settings.training.window_days == 21  # env over YAML
    assert settings.training.backend == "kubernetes"
    assert settings.training.holdout_days == 2  # conf over everything
    assert load_settings(conf={"training": {"window_days": 7}}, env=env).training.window_days == 7


def test_wrong_value_names_key_and_layer(tmp_path: Path) -> None:
    env = {"MLOPS_HOME": str(tmp_path), "MLOPS__DATASET__LABEL__DELAY_DAYS": "soon"}
    with pytest.raises(ConfigError) as error:
        load_settings(env=env)
    assert "dataset.label.delay_days" in str(error.value)
    assert "environment" in str(error.value) and "'soon'" in str(error.value)


def test_unknown_key_and_bad_choice_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"training\.backnd.*code overrides"):
        load_settings(conf={"training": {"backnd": "local"}}, env={"MLOPS_HOME": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"promotion\.policy"):
        load_settings(conf={"promotion": {"policy": "sometimes"}}, env={"MLOPS_HOME": str(tmp_path)})


def test_missing_or_malformed_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env={"MLOPS_CONFIG": str(tmp_path / "nope.yaml")})
    broken = tmp_path / "broken.yaml"
    broken.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_settings(env={"MLOPS_CONFIG": str(broken)})


def test_s3_lake_and_endpoint(tmp_path: Path) -> None:
    env = {
        "MLOPS_HOME": str(tmp_path),
        "MLOPS__DATASET__LAKE_URI": "s3://bucket/prefix/",
        "MLOPS__STORAGE__S3_ENDPOINT_URL": "http://localhost:9000",
    }
    settings = load_settings(env=env)
    assert settings.lake_is_s3 and settings.lake_uri == "s3://bucket/prefix"
    assert settings.s3_storage_options()["client_kwargs"]["endpoint_url"] == "http://localhost:9000"
    with pytest.raises(ConfigError, match="lake_uri"):
        load_settings(env={"MLOPS__DATASET__LAKE_URI": "gs://bucket"})


def test_xgboost_params_merge_but_other_mappings_are_replaced(tmp_path: Path) -> None:
    conf = {
        "model": {"params": {"max_depth": 3}},
        "kubernetes": {"node_selector": {"pool": "gpu"}},
        "gates": {"absolute": {"auc_pr": {"min": 0.3}}},
    }
    settings = load_settings(conf=conf, env={"MLOPS_HOME": str(tmp_path)})
    assert settings.model.params["max_depth"] == 3 and settings.model.params["subsample"] == 0.8
    assert settings.kubernetes.node_selector == {"pool": "gpu"}
    assert set(settings.gates.absolute) == {"auc_pr"}


# -- a run's overrides: an allow-list -----------------------------------------------------------------------
#: What the issue reproduced: a run's conf relaxed the gates (a 0.017 AUC-PR model became champion) and
#: pointed the trainer's MLflow credentials at another host. Each must be refused, naming the key.
REFUSED = [
    ({"gates": {"absolute": {"auc_pr": {"min": 0.0}}}}, "config.gates", "reviewed config file"),
    ({"mlflow": {"tracking_uri": "http://elsewhere"}}, "config.mlflow", "never per run"),
    ({"promotion": {"policy": "auto"}}, "config.promotion", "never per run"),
    ({"registry": {"ledger_uri": "sqlite:////tmp/other.db"}}, "config.registry", "never per run"),
    ({"kubernetes": {"image": "evil:latest"}}, "config.kubernetes", "never per run"),
    ({"dataset": {"lake_uri": "s3://other"}}, "config.dataset", "never per run"),
    ({"home": "/tmp/elsewhere"}, "config.home", "never per run"),
    ({"training": {"holdout_days": 1}}, "config.training.holdout_days", "never per run"),
    ({"model": {"decision_threshold": 0.01}}, "config.model.decision_threshold", "never per run"),
    ({"model": {"params": {"objective": "reg:squarederror"}}}, "config.model.params", "objective is set by the"),
    ({"modle": {"params": {}}}, "config.modle", "unknown setting"),
    ({"model": {"num_boost_round": 0}}, "config.model.num_boost_round", "greater than or equal to 1"),
]


@pytest.mark.parametrize(("conf", "key", "why"), REFUSED, ids=[key for _, key, _ in REFUSED])
def test_run_overrides_outside_the_allow_list_are_refused_naming_the_key(
    tmp_path: Path, conf: dict, key: str, why: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(run_overrides=conf, env={"MLOPS_HOME": str(tmp_path)})
    message = str(refused.value)
    assert key in message and why in message and "\n" not in message
    if "per run" in why or "unknown" in why:
        assert "model.params, model.num_boost_round, model.early_stopping_rounds, training.window_days" in message


def test_allowed_run_overrides_apply_over_every_layer(tmp_path: Path) -> None:
    config = tmp_path / "mlops.yaml"
    config.write_text("model: {params: {max_depth: 8}, num_boost_round: 500}\ngates: {champion_tolerance: 0.01}\n")
    env = {"MLOPS_HOME": str(tmp_path), "MLOPS_CONFIG": str(config)}
    overrides = {"model": {"params": {"eta": 0.05}, "num_boost_round": 50, "early_stopping_rounds": 5},
                 "training": {"window_days": 14}}  # fmt: skip
    settings = load_settings(run_overrides=overrides, env=env)
    assert settings.model.params["eta"] == 0.05 and settings.model.params["max_depth"] == 8  # merged
    assert (settings.model.num_boost_round, settings.model.early_stopping_rounds) == (50, 5)
    assert settings.training.window_days == 14
    assert settings.gates.champion_tolerance == 0.01  # the reviewed file's gates, untouched
    assert check_run_overrides(overrides) == overrides
    assert check_run_overrides(None) == {} and check_run_overrides({}) == {}


def test_the_trigger_time_schema_refuses_every_key_the_allow_list_refuses() -> None:
    """Airflow validates the `config` param with this schema when a run is created (form, REST API, CLI):
    a refused key never gets a run. A bad value of an allowed key fails the run's first task instead."""
    import jsonschema

    schema = run_overrides_schema()
    jsonschema.validate({"model": {"params": {"max_depth": 4}, "num_boost_round": 20}}, schema)
    jsonschema.validate({"training": {"window_days": 7}}, schema)
    jsonschema.validate({}, schema)
    for conf, key, why in REFUSED:
        if "greater than" in why:  # a value: refused when the run starts (test above)
            jsonschema.validate(conf, schema)
            continue
        with pytest.raises(jsonschema.ValidationError) as refused:
            jsonschema.validate(conf, schema)
        if "per run" in why or "unknown" in why:  # a refused key is named
            assert f"'{key.rsplit('.', 1)[-1]}' was unexpected" in str(refused.value), key


def test_a_ledger_uri_of_an_unknown_database_is_a_config_error_without_its_password(tmp_path: Path) -> None:
    env = {"MLOPS_HOME": str(tmp_path), "MLOPS__REGISTRY__LEDGER_URI": "mysql://ledger:s3cr3t-pass@db/ledger"}
    with pytest.raises(ConfigError, match=r"registry\.ledger_uri: .*SQLite or PostgreSQL") as refused:
        load_settings(env=env)
    assert "s3cr3t-pass" not in str(refused.value) and "ledger:***@db" in str(refused.value)
    ok = load_settings(env={**env, "MLOPS__REGISTRY__LEDGER_URI": "postgresql+psycopg2://u:p@db:5432/ledger"})
    assert ok.ledger_uri.startswith("postgresql+psycopg2://")


# -- models: one file each ---------------------------------------------------------------------------------
CARD_MODEL = Path(__file__).resolve().parents[2] / "include" / "models" / "card_transactions.yaml"


def _models(tmp_path: Path, **files: str) -> dict[str, str]:
    """An env whose models folder holds ``files`` (name -> YAML text)."""
    folder = tmp_path / "models"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text)
    return {"MLOPS_HOME": str(tmp_path / "home"), "MLOPS_MODELS_DIR": str(folder)}


def test_a_model_is_a_file_and_owns_its_namespace(tmp_path: Path) -> None:
    env = _models(tmp_path, fraud=CARD_MODEL.read_text(), churn="dataset: {id_column: customer_id}\n", _notes="x: 1")
    assert model_names(env) == ["churn", "fraud"]  # '_'-files are not models
    fraud, churn = load_settings(model="fraud", env=env), load_settings(model="churn", env=env)
    assert (fraud.model_name, fraud.dataset.name, churn.model_name, churn.dataset.id_column) == (
        "fraud", "fraud", "churn", "customer_id")  # fmt: skip
    assert fraud.lake_uri != churn.lake_uri and fraud.lake_uri.endswith("/lake/fraud")
    assert fraud.reports_dir != churn.reports_dir
    assert churn.dag_id("drift_monitoring") == "churn__drift_monitoring"
    assert model_of_dag("churn__drift_monitoring") == "churn"
    assert load_settings(model="churn", env={**env, "MLOPS__STORAGE__LAKE_ROOT": "s3://bucket/lake"}).lake_uri == (
        "s3://bucket/lake/churn"
    )


def test_a_model_file_cannot_set_what_models_share(tmp_path: Path) -> None:
    env = _models(tmp_path, rogue="mlflow: {tracking_uri: 'http://evil:5000'}\ndataset: {id_column: x}\n")
    with pytest.raises(ConfigError, match=r"rogue\.yaml: mlflow: set only by the deployment config"):
        load_settings(model="rogue", env=env)
    env = _models(tmp_path, other="model: {name: someone_else}\n")
    with pytest.raises(ConfigError, match="model.name is 'someone_else'"):
        load_settings(model="other", env=env)


def test_a_broken_model_file_is_named_with_its_key(tmp_path: Path) -> None:
    env = _models(tmp_path, broken="training: {window_days: many}\n")
    with pytest.raises(ConfigError) as error:
        load_settings(model="broken", env=env)
    assert "training.window_days" in str(error.value) and "broken.yaml" in str(error.value)


def test_which_model_a_command_is_for(tmp_path: Path) -> None:
    one = _models(tmp_path / "one", fraud="{}\n")
    assert resolve_model(None, one) == "fraud"
    two = _models(tmp_path / "two", fraud="{}\n", churn="{}\n")
    with pytest.raises(ConfigError, match=r"2 models \(churn, fraud\): say which one with --model"):
        resolve_model(None, two)
    assert resolve_model("churn", two) == "churn"
    assert resolve_model(None, {**two, "MLOPS_MODEL": "fraud"}) == "fraud"
    with pytest.raises(ConfigError, match=r"no model 'nope'.*models: churn, fraud"):
        resolve_model("nope", two)


# -- deployment sections: where alerts go, what the UI links to ---------------------------------------------
def test_alerts_and_ui_are_read_from_the_deployment_file_and_env(tmp_path: Path) -> None:
    config = tmp_path / "deployment.yaml"
    config.write_text(
        "alerts:\n  smtp_conn_id: mlops_smtp\n  email_to: [oncall@example.com]\n"
        "  airflow_url: https://airflow.example.com/\nui: {mlflow_ui_url: 'https://mlflow.example.com'}\n"
    )
    env = {"MLOPS_HOME": str(tmp_path), "MLOPS_CONFIG": str(config)}
    settings = load_settings(env=env)
    assert (settings.alerts.smtp_conn_id, settings.alerts.email_to) == ("mlops_smtp", ["oncall@example.com"])
    assert settings.alerts.airflow_url == "https://airflow.example.com"  # one form: links append their path
    assert settings.ui.mlflow_ui_url == "https://mlflow.example.com"
    from_env = load_settings(env={**env, "MLOPS__ALERTS__EMAIL_TO": "a@example.com, b@example.com"})
    assert from_env.alerts.email_to == ["a@example.com", "b@example.com"]  # env over the file, comma-separated


@pytest.mark.parametrize("section", ["alerts", "ui"])
def test_a_model_file_cannot_say_where_alerts_go_or_what_the_ui_links_to(tmp_path: Path, section: str) -> None:
    text = {"alerts": "alerts: {slack_conn_id: my_slack}\n", "ui": "ui: {mlflow_ui_url: 'http://evil:5000'}\n"}
    env = _models(tmp_path, rogue=text[section])
    with pytest.raises(ConfigError, match=rf"rogue\.yaml: {section}: set only by the deployment config"):
        load_settings(model="rogue", env=env)


@pytest.mark.parametrize(
    ("variable", "value", "rule"),
    [
        ("MLOPS__UI__MLFLOW_UI_URL", "http://admin:hunter2@mlflow:5000", "must not embed a user or password"),
        ("MLOPS__ALERTS__AIRFLOW_URL", "https://tok3n-abc@airflow.example.com", "must not embed a user or password"),
        ("MLOPS__UI__MLFLOW_UI_URL", "javascript:alert(1)", "must be an http:// or https:// URL"),
        ("MLOPS__ALERTS__AIRFLOW_URL", "airflow:8080", "must be an http:// or https:// URL"),
        ("MLOPS__ALERTS__EMAIL_TO", "oncall", "not e-mail addresses"),
    ],
)
def test_a_shown_url_is_http_without_credentials_and_the_error_names_the_setting(
    tmp_path: Path, variable: str, value: str, rule: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(env={"MLOPS_HOME": str(tmp_path), variable: value})
    setting = variable.removeprefix("MLOPS__").replace("__", ".").lower()
    assert f"{setting}: " in str(refused.value) and rule in str(refused.value)
    assert "hunter2" not in str(refused.value) and "tok3n-abc" not in str(refused.value)
