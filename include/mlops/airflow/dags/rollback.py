"""model_rollback: one manual trigger moves `champion` back (to the previous ledger entry or a named version).

At parse time only the Airflow SDK, ``mlops.config`` and ``mlops.airflow`` are imported; the task imports
``mlops.registry`` when it runs.
"""

from __future__ import annotations

import datetime as dt
from textwrap import dedent

from airflow.sdk import DAG, task

from mlops.airflow import dag_defaults, error_policy, run_settings
from mlops.airflow.assets import champion_asset, record_champion_change
from mlops.airflow.notifiers import ChampionChangeNotifier
from mlops.airflow.runs import run_param
from mlops.config import Settings


def build(settings: Settings) -> DAG:
    """``<model>__model_rollback`` for the model of ``settings`` (what the DAG factory calls per model file)."""
    CHAMPION = champion_asset(settings)

    DOC = dedent(f"""
    ### Roll `champion` of `{settings.model_name}` back

    Trigger manually with conf `{{"reason": "why", "to_version": null}}`:

    * `to_version` empty: champion walks back its history to the last earlier champion that was never
      rolled back (two rollbacks in a row go v3 -> v2 -> v1, never back to v3);
    * `to_version` set: champion moves back to that version, after checking it was champion before (by the
      ledger: a version awaiting approval is never made champion by a rollback), its gate verdict in the
      ledger passed and it was never rolled back.

    The version replaced is marked rolled back in the ledger: it is never a rollback target nor promotable
    again (a new gate pass registers a new version). The move is compare-and-set against the current
    champion and recorded in the ledger (who: this DAG and the user who triggered the run; when, from, to,
    why, which run), like every promotion. Takes
    seconds; scoring picks the new champion on its next run. An unknown, never-gated or rolled-back version
    fails at once, without retries.
    """)

    with DAG(
        dag_id=settings.dag_id("model_rollback"),
        description="Move the champion alias back to the previous (or a named) version",
        schedule=None,
        max_active_runs=1,
        doc_md=DOC,
        params={
            "reason": run_param(type="string", minLength=3, description="why roll back (recorded in the ledger)"),
            "to_version": run_param(
                None,
                type=["null", "string", "integer"],
                description="empty = the last earlier champion never rolled back",
            ),
        },
        **dag_defaults(settings, "registry", "rollback", retries=1, execution_timeout=dt.timedelta(minutes=5)),
    ) as dag:

        @task(outlets=[CHAMPION], on_success_callback=[ChampionChangeNotifier()])
        @error_policy
        def rollback(params: dict | None = None, dag_run=None, outlet_events=None) -> dict:  # type: ignore[no-untyped-def]
            """Compare-and-set `champion` back; refuses unknown or never-gated versions."""
            from mlops.registry import Registry

            settings = run_settings()
            target = None if params["to_version"] in (None, "") else str(params["to_version"])
            human = getattr(dag_run, "triggering_user_name", None) or "unknown"  # the person who asked for it
            move = Registry(settings).rollback(target, actor=f"airflow:{dag_run.dag_id}", reason=params["reason"],
                                               run=dag_run.run_id, human=human)  # fmt: skip
            print(f"champion: v{move.from_version} -> v{move.to_version} ({params['reason']})")
            record_champion_change(outlet_events, CHAMPION, move.__dict__)
            return move.__dict__

        rollback()
    return dag
