"""Quarantine and requeue: a day that broke its contract leaves ``raw/`` for ``quarantine/``, and comes back.

``quarantine/dt=D/reason.json`` says why (the verdict) and keeps the day's history; a day quarantined again after
a new delivery keeps the earlier ones (``quarantine/dt=D/_earlier/<n>/``). ``mlops requeue --date D``
(:func:`requeue_partition`) returns a quarantined day to ``raw/`` for re-validation.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from mlops.data.lake import REASON, VALIDATED
from mlops.data.publish import publish_json
from mlops.errors import InputError

if TYPE_CHECKING:
    from mlops.data.lake import Lake
    from mlops.validation_verdict import Verdict

#: The validation step's logger: quarantine and requeue are its outcomes (``mlops simulate`` quiets that logger).
log = logging.getLogger("mlops.validation")


def quarantine_partition(lake: Lake, day: dt.date, verdict: Verdict) -> str:
    """Move ``raw/dt=D`` to ``quarantine/dt=D`` with ``reason.json``; downstream never sees the data.

    The reason is written into the partition *before* the move (an atomic rename locally), and any
    stale ``_VALIDATED.json`` from an earlier run is removed first, so no reader sees a marked bad day.
    A day quarantined before (an earlier delivery, not this one requeued) is not overwritten: each earlier
    delivery is kept with its own ``reason.json`` under ``quarantine/dt=D/_earlier/<n>/`` (1 = the first),
    while ``quarantine/dt=D/`` itself always holds the latest, where every reader looks.
    """
    raw = lake.partition("raw", day)
    target = lake.partition("quarantine", day)
    lake.remove(lake.marker("raw", day, VALIDATED))
    reason = verdict.to_dict()
    reason["quarantined_at"] = dt.datetime.now(dt.UTC).isoformat()
    reason["moved_from"] = lake.url(raw)
    earlier = lake.marker("raw", day, REASON)  # a requeued day carries its history back into raw/
    history = list(lake.read_json(earlier).get("history", [])) if lake.exists(earlier) else []
    first_line = verdict.summary().splitlines()[0]
    reason["history"] = [*history, {"event": "quarantined", "at": reason["quarantined_at"], "why": first_line}]
    # (A day with no raw/ at all gets a raw/ of its reason alone, moved like any delivery.)
    publish_json(lake, lake.marker("raw", day, REASON), reason)
    if lake.exists(target):
        _keep_earlier_deliveries(lake, target, raw)
    lake.move(raw, target)
    log.warning("quarantined %s -> %s", lake.url(raw), lake.url(target))
    return lake.url(target)


def _keep_earlier_deliveries(lake: Lake, target: str, raw: str) -> None:
    """Move the quarantined deliveries of ``target`` under ``raw``'s ``_earlier/`` before ``raw`` replaces it.

    Those ``target`` kept already keep their numbers; its latest becomes the next one. Moved into ``raw/``
    (never deleted) first: a step killed half-way loses nothing, and ``_`` names are never read as data.
    """
    numbers = lake.earlier_numbers(target)
    for number in numbers:
        lake.move(lake.earlier(target, number), lake.earlier(raw, number))
    lake.remove(lake.earlier(target))
    kept = lake.earlier_numbers(raw)  # includes any a killed earlier attempt moved
    if lake.listdir(target):
        lake.move(target, lake.earlier(raw, max(kept, default=0) + 1))
    lake.remove(target)


class NothingToRequeue(InputError):
    """The day has no quarantined data to return to ``raw/``, or ``raw/`` already holds a landing of it."""


def requeue_partition(lake: Lake, day: dt.date, actor: str, note: str = "") -> str:
    """Move ``quarantine/dt=D`` back to ``raw/dt=D`` for re-validation; ``reason.json`` records it in its history.

    For a day quarantined by mistake (a contract since fixed, a rule since relaxed). The day is not marked
    validated: validation runs again (``mlops validate --date D`` or clear the day's ``data_validation``
    run) and may quarantine it again, keeping the history.
    """
    quarantined, raw = lake.partition("quarantine", day), lake.partition("raw", day)
    if not lake.data_files(quarantined):
        raise NothingToRequeue(
            f"{lake.url(quarantined)} holds no data to requeue: land the day again in {lake.url(raw)}"
        )
    if lake.exists(raw):
        raise NothingToRequeue(
            f"{lake.url(raw)} exists already (a new landing of the day?): validate it with "
            f"`mlops validate --date {day}`, or remove it before requeueing the quarantined copy"
        )
    reason_path = lake.marker("quarantine", day, REASON)
    reason = lake.read_json(reason_path) if lake.exists(reason_path) else {}
    now = dt.datetime.now(dt.UTC).isoformat()
    entry = {"event": "requeued", "at": now, "by": actor, "note": note}
    reason["history"] = [*reason.get("history", []), entry]
    publish_json(lake, reason_path, reason)
    lake.move(quarantined, raw)
    log.warning("requeued %s -> %s by %s (%s)", lake.url(quarantined), lake.url(raw), actor, note or "no note")
    return lake.url(raw)
