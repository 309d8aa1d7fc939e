"""model_rollback: one manual trigger moves `champion` back (to the previous ledger entry or a named version).

At parse time only the Airflow SDK, ``mlops.config`` and ``mlops.airflow`` are imported; the task imports
``mlops.registry`` when it runs.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param, task

from mlops.airflow import dag_defaults, error_policy, run_settings
from mlops.config import load_settings

settings = load_settings()

DOC = f"""
### Roll `champion` of `{settings.model_name}` back

Trigger manually with conf `{{"reason": "why", "to_version": null}}`:

* `to_version` empty: champion returns to the version it replaced last (the previous ledger entry);
* `to_version` set: champion moves to that version, after checking it exists and once passed its gates.

The move is compare-and-set against the current champion and recorded in the ledger (who, when, from,
to, why, which run), like every promotion. Takes seconds; scoring picks the new champion on its next run.
An unknown or never-gated version fails at once, without retries.
"""

with DAG(
    dag_id="model_rollback",
    description="Move the champion alias back to the previous (or a named) version",
    schedule=None,
    max_active_runs=1,
    doc_md=DOC,
    params={
        "reason": Param(type="string", minLength=3, description="why roll back (recorded in the ledger)"),
        "to_version": Param(None, type=["null", "string", "integer"], description="empty = previous champion"),
    },
    **dag_defaults("registry", "rollback", retries=1, execution_timeout=dt.timedelta(minutes=5)),
) as dag:

    @task
    @error_policy
    def rollback(params: dict | None = None, dag_run=None) -> dict:  # type: ignore[no-untyped-def]
        """Compare-and-set `champion` back; refuses unknown or never-gated versions."""
        from mlops.registry import Registry

        settings = run_settings()
        target = None if params["to_version"] in (None, "") else str(params["to_version"])
        move = Registry(settings).rollback(target, actor=f"airflow:{dag_run.dag_id}", reason=params["reason"],
                                           run=dag_run.run_id)  # fmt: skip
        print(f"champion: v{move.from_version} -> v{move.to_version} ({params['reason']})")
        return move.__dict__

    rollback()
