"""Gate verdicts and approvals as evidence: what makes a version promotable, and who may approve it.

A verdict is bound to the model artifact by :func:`artifact_sha256` (the booster's bytes, recomputed from the
artifact at every promotion), so a version registered by hand, or whose artifact was swapped after its gates
ran, is never promotable. :func:`check_approver` is the one rule for a manual approval: a user of
``promotion.approvers`` who did not trigger the run. ``import mlops.verdicts`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops.ledger import RegistryError

if TYPE_CHECKING:
    from mlops.config import Settings


def booster_sha256(booster: object) -> str:
    """The hash of a model artifact: its XGBoost booster's bytes (what scoring runs), however it was stored."""
    import hashlib

    return hashlib.sha256(bytes(booster.save_raw("ubj"))).hexdigest()  # type: ignore[attr-defined]


def artifact_sha256(settings: Settings, model_uri: str) -> str:
    """:func:`booster_sha256` of the model at ``model_uri``, recomputed from the artifact itself."""
    from mlops import models

    return booster_sha256(models.load_booster(settings, model_uri))


def check_approver(approvers: list[str], responder: str | None, triggering_user: str | None) -> str:
    """The approver's name, or :class:`RegistryError` when this answer may not approve the promotion.

    An approval counts only from a user of ``promotion.approvers`` who did not trigger the run.
    """
    if not responder:
        raise RegistryError("the promotion was approved by nobody (no responding user recorded); not promoted")
    if responder not in approvers:
        raise RegistryError(f"{responder!r} approved the promotion but is not in promotion.approvers "
                            f"({', '.join(approvers) or 'empty'}); not promoted")  # fmt: skip
    if responder == triggering_user:
        raise RegistryError(f"{responder!r} triggered this run and approved its own promotion: another user of "
                            f"promotion.approvers must approve it; not promoted")  # fmt: skip
    return responder
