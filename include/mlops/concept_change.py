"""A change in what the labels say, and what the retraining policy does about it.

A performance breach on labelled days confirms a change (concept or prior drift): :func:`concept_change_start`
finds its first day in the drift history, training windows then start there (``resolve_snapshot(since=...)``),
a breach waits until enough days since the change are labelled (:func:`wait_for_labels_reason`), and a champion
trained on a short window since the change retrains as the labelled days double (:func:`catch_up_reason`).
Pure functions over the history entries (``mlops.drift``'s ``DriftResult.to_dict()`` plus ``day``,
``labelled_days``, ``triggered``): the drift check (``mlops.monitoring``) and the training plan
(``mlops.plans``) call them; no I/O here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


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


def catch_up_reason(since: dt.date | None, learned_days: list[str], labelled_since: int, window_days: int,
                    version: str) -> str | None:  # fmt: skip
    """Why to retrain a champion that learned a change from a short window, or None.

    After a change in what the labels say, the first retrain learns from the few days since it
    (:func:`concept_change_start`); a champion that healthy does not breach again, so without this it would
    keep that short window's model. It retrains each time the labelled days since the change doubled the
    days its window held, until its window is full (``window_days``): a few retrains, each on twice the data.
    ``learned_days``: every day of the champion's window (train, validation and holdout).
    """
    if since is None or not learned_days or dt.date.fromisoformat(min(learned_days)) < since:
        return None  # no change, or the champion's window reaches before it (trained before, or full)
    if len(learned_days) >= window_days or labelled_since < 2 * len(learned_days):
        return None
    return (f"champion v{version} learned from {len(learned_days)} day(s) since the change of dt={since}; "
            f"{labelled_since} are labelled now")  # fmt: skip
