"""Settings layering (defaults < YAML < env < conf) and errors that name the key and who set it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.config import ConfigError, load_settings


def test_defaults_put_everything_under_mlops_home(tmp_path: Path) -> None:
    settings = load_settings(env={"MLOPS_HOME": str(tmp_path)})
    assert settings.lake_uri == str(tmp_path / "lake")
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
    with pytest.raises(ConfigError, match=r"training\.backnd.*DAG-run conf"):
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
