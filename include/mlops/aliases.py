"""Which version an alias names, read through the ledger (the truth) and checked against MLflow.

:func:`pin_champion` / :func:`pin_challenger` resolve an alias ONCE to a :class:`~mlops.models.PinnedModel`
that a whole run uses; :func:`alias_version` reads one alias; :func:`overview` is what ``mlops models`` and
the UI show. When the ledger and MLflow's alias disagree, readers refuse with
:class:`~mlops.ledger.AliasOutOfSync` until ``mlops models --resync``. This sits above both
:mod:`mlops.models` (the MLflow contract) and :mod:`mlops.registry` (moves through the ledger), so neither
imports the other upward.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from mlops import models
from mlops.models import CHALLENGER, CHAMPION, NoChampion, PinnedModel
from mlops.redact import redact_text
from mlops.registry import HeadTampered, Registry

if TYPE_CHECKING:
    from mlops.config import Settings

__all__ = ["CHALLENGER", "CHAMPION", "NoChampion", "alias_version", "overview", "pin_challenger", "pin_champion"]


def alias_version(settings: Settings, alias: str) -> str | None:
    """The version ``alias`` points to by the ledger (None when unset).

    Raises :class:`~mlops.ledger.AliasOutOfSync` (an input error: fail fast, the failure notifier fires)
    when MLflow's alias says otherwise, so nothing scores, monitors or gates against a tampered alias.
    """
    registry = Registry(settings)
    try:
        return registry.resolve(alias)
    finally:
        registry.ledger().dispose()


def pin_champion(settings: Settings) -> PinnedModel:
    """Resolve ``champion`` once; :class:`NoChampion` (an input error: no retry helps) when there is none."""
    version = alias_version(settings, CHAMPION)
    if version is None:
        where = redact_text(settings.mlflow_tracking_uri)
        raise NoChampion(
            f"model {settings.model_name!r} has no {CHAMPION!r} version in {where}: "
            f"nothing to score with. Run the `continuous_training` DAG (or `mlops train`) first so that a "
            f"version passes its gates and is promoted."
        )
    return models.pin_version(settings, version)


def pin_challenger(settings: Settings) -> PinnedModel | None:
    """Resolve ``challenger`` once (None when unset)."""
    version = alias_version(settings, CHALLENGER)
    return None if version is None else models.pin_version(settings, version)


def overview(settings: Settings) -> dict[str, Any]:
    """Champion, challenger (by the ledger's moves), MLflow's aliases, rolled-back versions, the moves and the
    approvals and rejections of promotions.

    What ``mlops models`` and the UI show; it never raises on a disagreement, it lists it in ``out_of_sync``
    (and, for a ledger head row edited by hand, the one-line reason in ``problems``). A head row that no move
    records is never shown as the champion: the champion shown is where the last recorded move went.
    """
    registry = Registry(settings)
    ledger = registry.ledger()
    name = settings.model_name
    try:
        heads: dict[str, str | None] = {}
        problems: dict[str, str] = {}
        for alias in (CHAMPION, CHALLENGER):
            try:
                heads[alias] = ledger.head(name, alias)
            except HeadTampered as exc:
                heads[alias], problems[alias] = ledger.recorded_head(name, alias), str(exc)
        mlflow_aliases = {alias: registry.alias_version(alias) for alias in (CHAMPION, CHALLENGER)}
        return {
            "model": name,
            **heads,
            "mlflow_aliases": mlflow_aliases,
            "out_of_sync": [
                alias for alias, head in heads.items() if alias in problems or mlflow_aliases[alias] != head
            ],
            "problems": problems,
            "rolled_back": [asdict(retired) for retired in registry.retired().values()],
            "ledger": [asdict(move) for move in ledger.moves(name)],
            "decisions": [asdict(decision) for decision in ledger.decisions(name)],
        }
    finally:
        ledger.dispose()
