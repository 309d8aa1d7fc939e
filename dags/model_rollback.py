"""model_rollback: one manual trigger moves `champion` back (to the previous ledger entry or a named version)."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param, task

from mlops.config import load_settings
from mlops.orchestration import START_DATE, default_args

settings = load_settings()

DOC = f"""
### Roll `champion` of `{settings.model_name}` back

Trigger manually with conf `{{"reason": "why", "to_version": null}}`:

* `to_version` empty: champion returns to the version it replaced last (the previous ledger entry);
* `to_version` set: champion moves to that version, after checking it exists and once passed its gates.

The move is compare-and-set against the current champion and recorded in the ledger (who, when, from,
to, why, which run), like every promotion. Takes seconds; scoring picks the new champion on its next run.
"""

with DAG(
    dag_id="model_rollback",
    description="Move the champion alias back to the previous (or a named) version",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=1, execution_timeout=dt.timedelta(minutes=5)),
    doc_md=DOC,
    tags=["mlops", "registry", "rollback"],
    params={
        "reason": Param(type="string", minLength=3, description="why roll back (recorded in the ledger)"),
        "to_version": Param(None, type=["null", "string", "integer"], description="empty = previous champion"),
    },
) as dag:

    @task
    def rollback(params: dict | None = None, dag_run=None) -> dict:  # type: ignore[no-untyped-def]
        """Compare-and-set `champion` back; refuses unknown or never-gated versions."""
        from mlops.registry import Registry

        target = None if params["to_version"] in (None, "") else str(params["to_version"])
        move = Registry(settings).rollback(target, actor=f"airflow:{dag_run.dag_id}", reason=params["reason"],
                                           run=dag_run.run_id)  # fmt: skip
        print(f"champion: v{move.from_version} -> v{move.to_version} ({params['reason']})")
        return move.__dict__

    rollback()
