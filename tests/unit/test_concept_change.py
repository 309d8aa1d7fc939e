"""How the policy catches up after a change in what the labels say: when a champion trained on the few days
since the change retrains, and what holds that retrain back (cooldown, debounce)."""

from __future__ import annotations

import datetime as dt

from mlops.concept_change import catch_up_reason
from mlops.config import Settings
from mlops.drift import DriftResult, trigger_decision

SINCE = dt.date(2026, 4, 1)


def _days(count: int) -> list[str]:
    """A champion's window: ``count`` days from the change on."""
    return [(SINCE + dt.timedelta(days=i)).isoformat() for i in range(count)]


def _first_catch_up(learned: int, window_days: int = 14) -> int | None:
    """The fewest labelled days since the change at which a champion that learned ``learned`` retrains."""
    for labelled in range(learned, 4 * window_days):
        if catch_up_reason(SINCE, _days(learned), labelled, window_days, "5") is not None:
            return labelled
    return None


def test_a_champion_on_a_short_window_since_the_change_retrains_every_two_labelled_days() -> None:
    # The first retrain learned 3 days (1 to train): it retrains with 5, then 7, not waiting for twice as many.
    assert _first_catch_up(3) == 5
    assert _first_catch_up(5) == 7
    reason = catch_up_reason(SINCE, _days(3), 5, 14, "5")
    assert reason is not None and "v5 learned from 3 day(s)" in reason and "5 are labelled" in reason


def test_a_longer_window_waits_for_twice_the_days_and_a_full_window_is_the_last_catch_up() -> None:
    assert _first_catch_up(7) == 14
    assert _first_catch_up(12) == 14  # a full window now, not 24 labelled days
    assert _first_catch_up(14) is None  # full: nothing left to catch up
    assert catch_up_reason(SINCE, ["2026-03-31", *_days(3)], 9, 14, "4") is None  # learned before the change


def _window(day: str, breached: bool, severe: bool = False) -> DriftResult:
    auc_pr = 0.3 if breached else 0.5
    performance = {"breached": breached, "auc_pr": auc_pr, "reference_auc_pr": 0.55, "relative_drop": 1 - auc_pr / 0.55}
    return DriftResult(day=day, window=[day], features={}, score={"psi": 0.0, "breached": False},
                       performance=performance, breached_features={}, breached=breached, severe=severe)  # fmt: skip


def _triggered(day: str) -> dict:
    return {"day": day, "breached": True, "triggered": True, "performance": {"breached": True}}


def test_a_catch_up_comes_two_days_after_the_last_trigger_despite_a_longer_cooldown(settings: Settings) -> None:
    assert settings.drift.cooldown_days == 3
    history = [_triggered("2026-04-06")]
    reason = catch_up_reason(SINCE, _days(3), 5, 14, "5")
    on_day_two = trigger_decision(settings, history, _window("2026-04-08", False), dt.date(2026, 4, 8), None,
                                  False, catch_up=reason)  # fmt: skip
    assert on_day_two["trigger"] and on_day_two["reason"].startswith("catch-up:")
    next_day = trigger_decision(settings, history, _window("2026-04-07", False), dt.date(2026, 4, 7), None, False,
                                catch_up=reason)  # fmt: skip
    assert not next_day["trigger"] and "cooldown" in next_day["reason"]
    # without a catch-up due, a performance breach still waits out the whole cooldown
    breach = trigger_decision(settings, history, _window("2026-04-08", True, severe=True), dt.date(2026, 4, 8),
                              None, False)  # fmt: skip
    assert not breach["trigger"] and "cooldown" in breach["reason"]


def test_a_catch_up_is_not_held_by_the_debounce_of_a_mild_breach(settings: Settings) -> None:
    # Days scored by the champion before the last one still breach mildly; that must not postpone the catch-up.
    reason = catch_up_reason(SINCE, _days(5), 7, 14, "6")
    mild = _window("2026-04-10", True)
    history = [_triggered("2026-04-06")]  # past every cooldown
    decision = trigger_decision(settings, history, mild, dt.date(2026, 4, 10), None, False, catch_up=reason)
    assert decision["trigger"] and decision["reason"].startswith("catch-up:")
    without = trigger_decision(settings, history, mild, dt.date(2026, 4, 10), None, False)
    assert not without["trigger"] and without["reason"].startswith("debounce:")
