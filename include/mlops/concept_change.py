"""A change in what the labels say, and what the retraining policy does about it.

A performance breach on labelled days confirms a change (concept or prior drift): :func:`concept_change_start`
finds its first day in the drift history, training windows then start there (``resolve_snapshot(since=...)``),
a breach waits until enough days since the change are labelled (:func:`wait_for_labels_reason`), and a champion
trained on a short window since the change retrains as that window grows (:func:`catch_up_reason`,
:func:`catch_up_due`).
Pure functions over the history entries (``mlops.drift``'s ``DriftResult.to_dict()`` plus ``day``,
``labelled_days``, ``triggered``): the drift check (``mlops.monitoring``) and the training plan
(``mlops.plans``) call them; no I/O here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

#: The labelled days a short window since a change grows by before its champion retrains, and the fewest days
#: between a catch-up and the trigger before it: one more day often only lengthens the holdout (``split_days``).
CATCH_UP_STEP_DAYS = 2
#: Below this many days since the change (twice the three a window needs), a window holds one to three train
#: days: each step of :data:`CATCH_UP_STEP_DAYS` adds a third or more to what a retrain learns.
SHORT_WINDOW_DAYS = 6


def _day(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def concept_change_start(history: list[dict], up_to: dt.date) -> dt.date | None:
    """The first day of the newest confirmed change in what the labels say (None when there is none).

    A change is confirmed by a performance breach on labelled days. Its first day is the oldest labelled day
    that the first breaching check saw and the check before it had not (a daily check adds the one day whose
    labels just arrived): the day the model started to be wrong. It stays the answer after the breach clears
    (a champion trained since the change no longer breaches, and its successors must not learn the old concept
    again); a later breach that follows a clean check starts a new change. Checks without labelled evidence
    neither confirm nor clear a change. Only entries up to ``up_to`` count: a run for day D decides from days
    up to D.
    """
    start: dt.date | None = None
    seen: dt.date | None = None  # the newest labelled day of the last check that did not breach
    breaching = False
    for entry in sorted((e for e in history if _day(e["day"]) <= up_to), key=lambda e: _day(e["day"])):
        performance = entry.get("performance")
        if not performance:
            continue
        labelled = sorted(_day(d) for d in entry.get("labelled_days") or [entry["day"]])
        if not performance.get("breached"):
            breaching, seen = False, labelled[-1]
            continue
        if not breaching:
            new = [d for d in labelled if seen is None or d > seen]
            start = new[0] if new else labelled[-1]
        breaching = True
    return start


def wait_for_labels_reason(since: dt.date | None, labelled_since: int, needed: int) -> str | None:
    """Why a performance breach waits instead of triggering, or None: fewer than ``needed`` days since the change
    are labelled, so a training run could only learn the concept that stopped holding (it would skip, and its
    trigger would hold the cooldown while the labels arrive)."""
    if since is None or labelled_since >= needed:
        return None
    return (f"the labels changed from dt={since}; {labelled_since} of the {needed} days a training window since "
            "then needs are labelled")  # fmt: skip


def catch_up_due(learned: int, window_days: int) -> int:
    """The labelled days since a change at which a champion that learned ``learned`` of them retrains.

    A short window (fewer than :data:`SHORT_WINDOW_DAYS`) retrains every :data:`CATCH_UP_STEP_DAYS` labelled
    days: its model learned from one to three train days, where each new day changes the model most (in the
    default simulated scenario, waiting for twice the days left it 0.05 to 0.1 AUC-PR behind a model refitted
    daily). A longer one retrains once the labelled days doubled. Never later than a full window
    (``window_days``): that retrain is the last.
    """
    due = learned + CATCH_UP_STEP_DAYS if learned < SHORT_WINDOW_DAYS else 2 * learned
    return min(due, window_days)


def catch_up_reason(since: dt.date | None, learned_days: list[str], labelled_since: int, window_days: int,
                    version: str) -> str | None:  # fmt: skip
    """Why to retrain a champion that learned a change from a short window, or None.

    After a change in what the labels say, the first retrain learns from the few days since it
    (:func:`concept_change_start`); a champion that healthy does not breach again, so without this it would
    keep that short window's model. It retrains when the labelled days since the change reach
    :func:`catch_up_due`, until its window is full (``window_days``): a few retrains, each on more data.
    ``learned_days``: every day of the champion's window (train, validation and holdout).
    """
    if since is None or not learned_days or dt.date.fromisoformat(min(learned_days)) < since:
        return None  # no change, or the champion's window reaches before it (trained before, or full)
    if len(learned_days) >= window_days or labelled_since < catch_up_due(len(learned_days), window_days):
        return None
    return (f"champion v{version} learned from {len(learned_days)} day(s) since the change of dt={since}; "
            f"{labelled_since} are labelled now")  # fmt: skip
