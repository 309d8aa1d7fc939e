"""Test helper: record the gates' verdict on a version's training run, as ``assess`` does (no MLflow tag counts).

Tests that register versions by hand use it for the versions the platform would have assessed; a version
without it is exactly what an attacker registers outside the platform.
"""

from __future__ import annotations

from mlops.ledger import GateVerdict
from mlops.registry import Registry
from mlops.verdicts import artifact_sha256


def record_verdict(registry: Registry, version: str, passed: bool = True, compared: str | None = None) -> GateVerdict:
    """The ledger's verdict on ``version``'s training run, bound to its artifact's hash as it is now."""
    run_id = registry.client.get_model_version(registry.name, str(version)).run_id
    artifact = artifact_sha256(registry.settings, f"models:/{registry.name}/{version}")
    return registry.ledger().record_verdict(
        GateVerdict(
            model=registry.name,
            training_run=str(run_id),
            passed=passed,
            champion_compared=compared,
            artifact_sha256=artifact,
            holdout_sha256="0" * 64,
            report_sha256="0" * 64,
            actor="test",
            run="test",
        )  # fmt: skip
    )
