"""MLflow registration, the ``challenger``/``champion`` aliases, compare-and-set promotion, rollback.

MLflow keeps the versions and where each alias points *now*; the ledger (``mlops.ledger``) keeps who
moved it, from what, why and in which run, and its head-row lock makes every move a compare-and-set.
One alias move is ONE ledger transaction (:meth:`Ledger.move`) with MLflow inside it: under the lock
the registry first checks that MLflow's alias still agrees with the ledger head (see "the window"
below), then the ledger compares the head with the expected champion (:class:`PromotionConflict`,
nothing changed) and records the move, and before the commit the registry sets the alias in MLflow:
if MLflow fails, the ledger rolls back.

The window: if the commit itself fails after MLflow was updated, MLflow points at the new version and
the ledger does not. The next move of that alias notices (the check under the lock) and raises
:class:`RegistryError` explaining the fix: :meth:`Registry.resync_alias` either resets MLflow to the
ledger head or records MLflow's version in the ledger. Readers of MLflow alone (batch scoring) may also
see the new champion a few milliseconds before the ledger commits; that is harmless because the move
is then committed or fixed.

``import mlops.registry`` stays cheap: SQLAlchemy and MLflow are imported inside functions.
"""

from __future__ import annotations

import json
import logging
import time
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from mlops.ledger import (
    AliasMove,
    Ledger,
    PromotionConflict,
    RegistryError,
    show_version,
)
from mlops.models import CHALLENGER, CHAMPION, Tags

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from mlops.config import Settings

__all__ = [
    "ALIASES",
    "CHALLENGER",
    "CHAMPION",
    "GATES_TAG",
    "LOGGED_MODEL_VERSIONS_TAG",
    "READY_TIMEOUT_SECONDS",
    "SOURCE_TAG",
    "AliasMove",
    "Ledger",
    "PromotionConflict",
    "Registry",
    "RegistryError",
]

log = logging.getLogger(__name__)

ALIASES = (CHAMPION, CHALLENGER)
#: Version tag set by the caller after evaluation; only "true" may become champion.
GATES_TAG = Tags.GATES_PASSED
#: Version tag holding the ``models:/...`` URI the version was registered from (its lineage to the logged model).
SOURCE_TAG = "source_model_uri"
#: MLflow's own logged-model tag listing the registered versions made from it (shown in the UI).
LOGGED_MODEL_VERSIONS_TAG = "mlflow.modelVersions"
#: How long ``register`` waits for a new version to become READY (remote registries copy artifacts).
READY_TIMEOUT_SECONDS = 300.0


class Registry:
    """The model registry for ``settings.model_name``: MLflow holds versions and aliases, the ledger the history."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.name = settings.model_name

    # -- connections -------------------------------------------------------------------------------------
    @cached_property
    def client(self) -> MlflowClient:
        """The MLflow client of :mod:`mlops.models` (explicit URIs), one per registry object."""
        from mlops import models

        return models.client(self.settings)

    @cached_property
    def _ledger(self) -> Ledger:
        return Ledger(self.settings.ledger_uri)

    def ledger(self) -> Ledger:
        return self._ledger

    # -- versions ----------------------------------------------------------------------------------------
    def register(self, run_id: str, model_uri: str, tags: dict[str, str]) -> str:
        """Create a new version of the model from ``model_uri`` with ``tags``; returns the version.

        Either the version exists READY with its tags, or it does not exist at all: a failure after the
        version was created deletes it again, so nothing half-registered can be promoted later.
        """
        from mlflow.exceptions import MlflowException

        client = self.client
        try:
            client.create_registered_model(self.name)
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise
        model_id = _logged_model_id(model_uri)
        source = model_uri
        if model_id is not None and not _is_remote(self.settings.mlflow_tracking_uri):
            # MLflow quirk: a database-backed registry resolves a ``models:/m-...`` source through a *new*
            # ``MlflowClient()`` on the process-global tracking URI, not ours (unset: ./mlflow.db in the
            # current directory, and "logged model not found"). Resolve it with our client instead.
            # That store does not keep ``model_id`` either: the ``source_model_uri`` tag keeps the link.
            source = client.get_logged_model(model_id).artifact_location
        wanted = {**{key: str(value) for key, value in tags.items()}, SOURCE_TAG: model_uri}
        created = client.create_model_version(
            self.name,
            source=source,
            run_id=run_id,
            tags=wanted,
            model_id=model_id,
            await_creation_for=0,  # we wait ourselves and clean up on failure
        )
        version = str(created.version)
        try:
            ready = self._wait_ready(version)
            missing = {key: value for key, value in wanted.items() if ready.tags.get(key) != value}
            if missing:
                self.tag_version(version, missing)
        except BaseException:
            log.warning("registering version %s of %s failed; deleting it again", version, self.name)
            try:
                client.delete_model_version(self.name, version)
            except Exception:  # the original error matters more; say what is left behind
                log.exception("could not delete half-registered version %s of %s", version, self.name)
            raise
        if model_id is not None:
            self._link_logged_model(model_id, version)
        log.info("registered %s version %s from %s", self.name, version, model_uri)
        return version

    def _link_logged_model(self, model_id: str, version: str) -> None:
        """List the version on the logged model's page, as ``mlflow.register_model`` does (best effort)."""
        try:
            existing = self.client.get_logged_model(model_id).tags.get(LOGGED_MODEL_VERSIONS_TAG)
            versions = [*json.loads(existing or "[]"), {"name": self.name, "version": version}]
            self.client.set_logged_model_tags(model_id, {LOGGED_MODEL_VERSIONS_TAG: json.dumps(versions)})
        except Exception:
            log.warning("could not link logged model %s to %s version %s", model_id, self.name, version, exc_info=True)

    def _wait_ready(self, version: str) -> ModelVersion:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        delay = 0.05
        while True:
            current = self.client.get_model_version(self.name, version)
            if current.status == "READY":
                return current
            if current.status == "FAILED_REGISTRATION":
                raise RegistryError(f"{self.name} version {version} failed to register: {current.status_message}")
            if time.monotonic() > deadline:
                raise RegistryError(f"{self.name} version {version} not READY after {READY_TIMEOUT_SECONDS:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _version(self, version: str) -> ModelVersion:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version(self.name, str(version))
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
                raise RegistryError(f"model {self.name!r} has no version {version!r}") from exc
            raise

    def tag_version(self, version: str, tags: dict[str, str]) -> None:
        """Add or overwrite tags on an existing version (lineage, gate evidence)."""
        self._version(version)
        for key, value in tags.items():
            self.client.set_model_version_tag(self.name, str(version), key, str(value))

    def version_tags(self, version: str) -> dict[str, str]:
        return dict(self._version(version).tags)

    def alias_version(self, alias: str) -> str | None:
        """Where ``alias`` points in MLflow (what scoring loads), None if unset or the model is unknown."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.name, alias).version)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def _require_gates_passed(self, version: str) -> None:
        passed = self._version(version).tags.get(GATES_TAG)
        if passed != "true":
            raise RegistryError(
                f"{self.name} version {version} cannot become {CHAMPION}: its tag {GATES_TAG!r} is "
                f"{passed!r}, not 'true' (it failed or never ran its evaluation gates)"
            )

    # -- alias moves -------------------------------------------------------------------------------------
    def set_challenger(self, version: str, actor: str, reason: str, run: str) -> AliasMove:
        """Point ``challenger`` at ``version`` (any existing version: the gates are the champion's bar)."""
        version = str(version)
        self._version(version)
        return self._move(CHALLENGER, version, compare=False, expected=None, actor=actor, reason=reason, run=run)

    def promote(self, version: str, expected_champion: str | None, actor: str, reason: str, run: str) -> AliasMove:
        """Make ``version`` champion iff the champion is still ``expected_champion`` (None: there was none).

        ``expected_champion`` is the version the candidate was compared against; if another promotion
        or rollback happened meanwhile, the comparison is stale and :class:`PromotionConflict` is raised.
        """
        version = str(version)
        expected = None if expected_champion is None else str(expected_champion)
        self._require_gates_passed(version)
        move = self._move(CHAMPION, version, compare=True, expected=expected, actor=actor, reason=reason, run=run)
        self._tag_promoted(move)
        return move

    def rollback(self, to_version: str | None, actor: str, reason: str, run: str) -> AliasMove:
        """Put the previous champion back (or ``to_version``); recorded as a move of its own with ``reason``."""
        ledger = self.ledger()
        current = ledger.head(self.name, CHAMPION)
        if to_version is None:
            history = ledger.moves(self.name, CHAMPION)
            if not history or history[-1].from_version is None:
                raise RegistryError(
                    f"model {self.name!r} has no previous {CHAMPION} to roll back to "
                    f"(recorded {CHAMPION} moves: {len(history)}); name the version to roll back to"
                )
            target = history[-1].from_version
        else:
            target = str(to_version)
        self._require_gates_passed(target)
        move = self._move(CHAMPION, target, compare=True, expected=current, actor=actor, reason=reason, run=run)
        self._tag_promoted(move)
        return move

    def resync_alias(
        self, alias: str, actor: str, reason: str, run: str, trust: Literal["ledger", "mlflow"] = "ledger"
    ) -> AliasMove | None:
        """Repair a disagreement between MLflow's alias and the ledger head (see the module docstring).

        ``trust="ledger"``: point MLflow's alias back at the ledger head (delete it if the ledger has none);
        nothing is recorded because the ledger's history is unchanged. ``trust="mlflow"``: record MLflow's
        current version as a move in the ledger (the promotion did happen, only its record was lost).
        """
        ledger = self.ledger()
        if trust == "mlflow":
            actual = self.alias_version(alias)
            if actual is None:
                raise RegistryError(f"MLflow has no {alias!r} alias for {self.name!r}: use trust='ledger'")
            head = ledger.head(self.name, alias)
            if actual == head:
                return None
            # compare=True: if anything moved the alias meanwhile, this raises instead of guessing.
            return ledger.move(
                self.name, alias, actual, compare=True, expected=head, actor=actor, reason=reason, run=run
            )
        with ledger.locked_head(self.name, alias) as (_, head):
            actual = self.alias_version(alias)
            if actual == head:
                return None
            if head is None:
                self.client.delete_registered_model_alias(self.name, alias)
            else:
                self.client.set_registered_model_alias(self.name, alias, head)
        log.warning(
            "reset MLflow alias %s of %s from %s to the ledger head %s (%s, by %s, run %s)",
            alias,
            self.name,
            show_version(actual),
            show_version(head),
            reason,
            actor,
            run,
        )
        return None

    def _move(
        self, alias: str, version: str, *, compare: bool, expected: str | None, actor: str, reason: str, run: str
    ) -> AliasMove:
        def check(head: str | None) -> None:
            actual = self.alias_version(alias)
            if actual != head:
                raise RegistryError(
                    f"MLflow alias {alias!r} of {self.name!r} points to version {show_version(actual)} but the "
                    f"ledger head is {show_version(head)}: an earlier move's ledger commit failed after MLflow was "
                    f"updated, or the alias was moved outside this registry. Nothing changed. Fix it with "
                    f"`Registry(settings).resync_alias({alias!r}, actor, reason, run, trust='ledger')` to put "
                    f"MLflow back to {show_version(head)}, or trust='mlflow' to record version "
                    f"{show_version(actual)} in the ledger; then retry."
                )

        def apply() -> None:
            self.client.set_registered_model_alias(self.name, alias, version)

        move = self.ledger().move(
            self.name,
            alias,
            version,
            compare=compare,
            expected=expected,
            actor=actor,
            reason=reason,
            run=run,
            check=check,
            apply=apply,
        )
        moved_from = show_version(move.from_version)
        log.info("%s of %s: %s -> %s by %s (%s)", alias, self.name, moved_from, version, actor, reason)
        return move

    def _tag_promoted(self, move: AliasMove) -> None:
        """Convenience tags for the MLflow UI; the ledger is the record, so a failure here is only logged."""
        try:
            self.tag_version(move.to_version, {"promoted_at": move.at, "promoted_by": move.actor})
        except Exception:
            log.warning("could not tag %s version %s as promoted", self.name, move.to_version, exc_info=True)


def _is_remote(tracking_uri: str) -> bool:
    return tracking_uri.startswith(("http://", "https://", "databricks"))


def _logged_model_id(model_uri: str) -> str | None:
    """``models:/m-abc`` (an MLflow 3 logged model) -> ``m-abc``, so the version links to the logged model."""
    rest = model_uri.removeprefix("models:/")
    if rest != model_uri and rest.startswith("m-") and "/" not in rest:
        return rest
    return None
