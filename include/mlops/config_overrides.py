"""What a run may change: the allow-list of a run's overrides (:class:`RunOverrides`) and its JSON schema.

Checked by :func:`mlops.config.check_run_overrides`; the schema is the ``config`` param of the DAGs, so
this module is imported while Airflow parses ``dags/`` and depends on pydantic only.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import Field, field_validator

from mlops.config_sections import _Section

# -- what a run may change ----------------------------------------------------------------------------------
#: XGBoost parameters a run may not set: they decide what the model predicts and how it is judged (the
#: gates and ``valid_aucpr`` assume ``binary:logistic`` scored by AUC-PR) or are set by the platform.
FIXED_XGB_PARAMS = ("objective", "eval_metric", "device", "seed", "nthread", "random_state")
#: Why a setting outside :class:`RunOverrides` is refused (said at trigger time and at load time).
NOT_PER_RUN = "set only by the deployment's reviewed config file (MLOPS_CONFIG) and env (MLOPS__*), never per run"


class ModelRunOverrides(_Section):
    """Bounded, so that a run asking for 10**12 rounds or a megabyte parameter fails at once, naming the key."""

    params: dict[str, float | int | str | bool] | None = Field(
        None, description=f"XGBoost parameters merged over the deployment's (not {', '.join(FIXED_XGB_PARAMS)})"
    )
    num_boost_round: int | None = Field(None, ge=1, le=10_000)
    early_stopping_rounds: int | None = Field(None, ge=1, le=1_000)

    @field_validator("params")
    @classmethod
    def _not_fixed(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        fixed = sorted(set(value or {}) & set(FIXED_XGB_PARAMS))
        if fixed:
            raise ValueError(f"{', '.join(fixed)} is set by the deployment, not per run")
        long = sorted(key for key, item in (value or {}).items() if isinstance(item, str) and len(item) > 100)
        if long:  # XGBoost's text parameters are short words (tree_method=hist)
            raise ValueError(f"{', '.join(long)}: a text value has at most 100 characters")
        return value


class TrainingRunOverrides(_Section):
    """Bounded: at most ten years of days."""

    window_days: int | None = Field(
        None, ge=1, le=3_650, description="last N validated, labelled days used for training"
    )


class RunOverrides(_Section):
    """The allow-list of a run's overrides (the ``config`` param of ``continuous_training``, ``--conf-json``).

    Only what is safe to change for one run: model parameters and rounds, the training window. ``as_of``,
    the reason and the drift evidence are the run's own params, not config. Everything else is the
    deployment's decision, reviewed in its config file.
    """

    model: ModelRunOverrides = ModelRunOverrides()
    training: TrainingRunOverrides = TrainingRunOverrides()


def overridable_keys() -> list[str]:
    """``["model.params", "model.num_boost_round", ...]``: the dotted keys a run may set."""
    return [
        f"{section}.{name}"
        for section, field in RunOverrides.model_fields.items()
        for name in field.annotation.model_fields  # type: ignore[union-attr]
    ]


#: The JSON-schema draft of every DAG param: Airflow checks each param's schema against its draft's meta-schema
#: whenever it resolves the param (many times per DAG while serialising, and at every task), and a draft-7
#: check costs about a sixth of the default 2020-12 one.
JSON_SCHEMA_DRAFT = "http://json-schema.org/draft-07/schema#"


@functools.cache
def run_overrides_schema() -> dict[str, Any]:
    """The JSON schema of the keys :class:`RunOverrides` allows (``additionalProperties: false`` at every level).

    Airflow validates DAG params when a run is created (trigger form, REST API, ``dags trigger``), so a
    refused key (a setting outside the allow-list, a fixed XGBoost parameter, a typo) is rejected before the
    run exists. Values are checked when the run starts (:func:`check_run_overrides`, the first task fails
    at once): Airflow re-checks this schema against its meta-schema each time it resolves the param, ~15
    times per model while the dag-processor serialises its training DAG, and value rules would double that.
    Built once per process; callers must not modify it.
    """
    # Shown with a refusal (Airflow prints the failing schema): which keys a run may set, and why no other.
    why = f"a run may set only {', '.join(overridable_keys())}; every other setting is {NOT_PER_RUN}"
    sections: dict[str, Any] = {
        name: {"type": "object", "additionalProperties": False, "description": why,
               "properties": {key: {} for key in field.annotation.model_fields}}  # type: ignore[union-attr]
        for name, field in RunOverrides.model_fields.items()
    }  # fmt: skip
    sections["model"]["properties"]["params"] = {"propertyNames": {"not": {"enum": list(FIXED_XGB_PARAMS)}}}
    # No root "title" or "description": Airflow passes the root keys as Param arguments when it deserializes.
    return {"$schema": JSON_SCHEMA_DRAFT, "type": "object", "additionalProperties": False, "properties": sections}
