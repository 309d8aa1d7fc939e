"""MLflow registration, the ``challenger``/``champion`` aliases, compare-and-set promotion, rollback.

MLflow keeps the versions and where each alias points *now*; the ledger (``mlops.ledger``) keeps who moved
it, from what, why and in which run. One alias move is ONE ledger transaction (:meth:`Ledger.move`, a
compare-and-set under the head-row lock, :class:`PromotionConflict`); after the commit MLflow's alias mirrors it.
Readers resolve an alias with :meth:`Registry.resolve`: the ledger head. A mirror left one move behind (a
failure between commit and mirror) is brought up to the head by the retry or the next reader; any other
disagreement (an alias moved by hand in MLflow) makes readers refuse with :class:`AliasOutOfSync` until
``mlops models --resync`` (:meth:`Registry.resync_alias`) puts MLflow back to the ledger head or, with
``--trust mlflow``, records MLflow's version (only one that passed its gates and was never rolled back).

Only a version whose training run has a passing gate verdict in the ledger (written by ``assess``), and whose
artifact still hashes as assessed, becomes champion (:mod:`mlops.verdicts`); MLflow tags are display only.
Rollback goes back only to a former champion (by the ledger's moves) and retires the version it replaces:
a retired version never returns, so two rollbacks in a row go v3 -> v2 -> v1. Every move records the person
behind it (``human``: the approver, the triggering user, or the OS user of a CLI call). Registration is
idempotent per training run. ``import mlops.registry`` stays cheap: SQLAlchemy and MLflow load inside functions.
"""

from __future__ import annotations

import json
import logging
import time
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from mlops.errors import InfrastructureError
from mlops.ledger import (
    AliasMove,
    AliasOutOfSync,
    GateVerdict,
    HeadTampered,
    Ledger,
    PromotionConflict,
    PromotionDecision,
    RegistryError,
    RetiredVersion,
    show_version,
)
from mlops.models import CHALLENGER, CHAMPION, Tags
from mlops.redact import redact, redact_text
from mlops.verdicts import artifact_sha256

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
    "AliasOutOfSync",
    "GateVerdict",
    "HeadTampered",
    "Ledger",
    "PromotionConflict",
    "PromotionDecision",
    "Registry",
    "RegistryError",
    "RetiredVersion",
]

log = logging.getLogger(__name__)

ALIASES = (CHAMPION, CHALLENGER)
#: Version tag mirroring the gates' verdict for the MLflow UI; never trusted (the ledger's verdict is the record).
GATES_TAG = Tags.GATES_PASSED
#: Version tag holding the ``models:/...`` URI the version was registered from (its lineage to the logged model).
SOURCE_TAG = "source_model_uri"
#: MLflow's own logged-model tag listing the registered versions made from it (shown in the UI).
LOGGED_MODEL_VERSIONS_TAG = "mlflow.modelVersions"
#: How long ``register`` waits for a new version to become READY (remote registries copy artifacts).
READY_TIMEOUT_SECONDS = 300.0
#: Pauses before a reader re-checks a disagreement between MLflow and the ledger (a move in flight).


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
        """The version of the model made from training run ``run_id``, with ``tags``; returns the version.

        Idempotent per training run: if a version of ``run_id`` exists (a retried task), it is completed
        and returned instead of registering a second one. ``gates.passed`` is written last, once the
        version is READY with every other tag (for people reading MLflow's UI: promotion reads only the
        ledger's gate verdict, :meth:`verdict_of`, never this tag).
        """
        from mlflow.exceptions import MlflowException

        client = self.client
        wanted = redact({**{key: str(value) for key, value in tags.items()}, SOURCE_TAG: model_uri})
        existing = self._versions_of_run(run_id)
        if existing:
            version = existing[-1]
            log.info("training run %s already registered %s version %s: completing it", run_id, self.name, version)
            self._finish(version, wanted)
            return version
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
        created = client.create_model_version(
            self.name,
            source=source,
            run_id=run_id,
            tags={key: value for key, value in wanted.items() if key != GATES_TAG},
            model_id=model_id,
            await_creation_for=0,  # we wait ourselves and clean up on failure
        )
        version = str(created.version)
        try:
            self._finish(version, wanted)
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

    def _versions_of_run(self, run_id: str) -> list[str]:
        """Versions of this model registered from training run ``run_id``, oldest first."""
        found = self.client.search_model_versions(f"name = '{self.name}' and run_id = '{run_id}'")
        return sorted((str(v.version) for v in found if str(v.run_id) == run_id), key=int)

    def _finish(self, version: str, wanted: dict[str, str]) -> None:
        """Wait until READY, set the missing tags, and ``gates.passed`` last (the registration's commit)."""
        ready = self._wait_ready(version)
        missing = {key: value for key, value in wanted.items() if ready.tags.get(key) != value}
        gates = missing.pop(GATES_TAG, None)
        if missing:
            self.tag_version(version, missing)
        if gates is not None:
            self.tag_version(version, {GATES_TAG: gates})

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
        """Add or overwrite tags on an existing version (lineage, gate evidence); secrets are masked."""
        self._version(version)
        for key, value in redact({key: str(value) for key, value in tags.items()}).items():
            self.client.set_model_version_tag(self.name, str(version), key, value)

    def version_tags(self, version: str) -> dict[str, str]:
        return dict(self._version(version).tags)

    def alias_version(self, alias: str) -> str | None:
        """Where ``alias`` points in MLflow, None if unset or the model is unknown (readers use :meth:`resolve`)."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.name, alias).version)
        except MlflowException as exc:
            missing = exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE")
            # Basic-auth MLflow answers its users 403, not 404, for an alias of a model not created yet: search.
            denied = exc.error_code == "PERMISSION_DENIED"
            if missing or (denied and not self.client.search_registered_models(f"name='{self.name}'")):
                return None
            raise

    def resolve(self, alias: str) -> str | None:
        """The version ``alias`` points to: the ledger head.

        MLflow's alias is the ledger's mirror, updated right after each ledger commit. A mirror left one move
        behind (the process died, or MLflow failed, between the commit and the update) is brought up to the
        head here; any other disagreement is refused (:class:`AliasOutOfSync`): the alias was moved by hand.
        """
        head = self.ledger().head(self.name, alias)
        actual = self.alias_version(alias)
        if actual != head:
            self._sync_lagging_mirror(alias, head, actual)
        return head

    def _sync_lagging_mirror(self, alias: str, head: str | None, actual: str | None) -> None:
        """Bring MLflow's alias from where the ledger's last move started to the ledger head, or refuse."""
        moves = self.ledger().moves(self.name, alias)
        if not (moves and moves[-1].to_version == head and moves[-1].from_version == actual):
            raise AliasOutOfSync(self._out_of_sync(alias, head, actual))
        log.warning("MLflow alias %s of %s was still at version %s, one move behind the ledger: set to version %s",
                    alias, self.name, show_version(actual), show_version(head))  # fmt: skip
        self._mirror(alias, head)

    def _mirror(self, alias: str, version: str | None) -> None:
        """Point MLflow's alias at ``version`` (the ledger head; None deletes it)."""
        try:
            if version is None:
                self.client.delete_registered_model_alias(self.name, alias)
            else:
                self.client.set_registered_model_alias(self.name, alias, version)
        except Exception as exc:
            raise InfrastructureError(
                f"the ledger records {alias} of {self.name!r} = version {show_version(version)}, but MLflow's alias "
                f"could not be updated ({_first_line(exc)}). "
                f"A retry (or any reader of the alias) brings MLflow up to the ledger."
            ) from exc

    def _out_of_sync(self, alias: str, head: str | None, actual: str | None) -> str:
        return (
            f"MLflow alias {alias!r} of {self.name!r} points to version {show_version(actual)} but the ledger "
            f"(the record of every promotion) says version {show_version(head)}: the alias was moved outside "
            f"`mlops promote`/`mlops rollback`, or a move's ledger commit failed. Nothing was done. Run "
            f"`mlops models --resync` to put MLflow back to version {show_version(head)} "
            f"(or `mlops models --resync --trust mlflow` to record version {show_version(actual)} in the ledger)"
        )

    def gated_against(self, version: str) -> str | None:
        """The champion ``version`` was compared with when its gates ran (None: there was none), by its verdict.

        Promotion is a compare-and-set against exactly that version; a version without a verdict in the
        ledger was never assessed by the platform and raises :class:`RegistryError`.
        """
        return self.verdict_of(version).champion_compared

    def retired(self) -> dict[str, RetiredVersion]:
        """The versions rolled back away from (never champion again)."""
        return self.ledger().retired(self.name)

    def verdict_of(self, version: str) -> GateVerdict:
        """The gates' verdict the ledger holds for the training run ``version`` was registered from."""
        run_id = str(self._version(version).run_id or "")
        verdict = self.ledger().verdict(self.name, run_id) if run_id else None
        if verdict is None:
            raise RegistryError(
                f"{self.name} version {version} has no gate verdict in the ledger (training run "
                f"{run_id or '<none>'}): it was not assessed by the platform, so it can never be {CHAMPION}; MLflow "
                f"tags such as {GATES_TAG!r} are not evidence. Train it with `mlops train` or the training DAG"
            )
        return verdict

    def _require_gates_passed(self, version: str) -> None:
        """The ledger's verdict passed and the version still serves the very artifact that was assessed."""
        verdict = self.verdict_of(version)
        if not verdict.passed:
            raise RegistryError(
                f"{self.name} version {version} cannot become {CHAMPION}: its gates failed (ledger verdict "
                f"#{verdict.id} of training run {verdict.training_run}, {verdict.at}); nothing changed"
            )
        actual = artifact_sha256(self.settings, f"models:/{self.name}/{version}")
        if actual != verdict.artifact_sha256:
            raise RegistryError(
                f"{self.name} version {version} cannot become {CHAMPION}: its model artifact hashes to "
                f"{actual[:12]}..., not {verdict.artifact_sha256[:12]}... as assessed (ledger verdict #{verdict.id}): "
                f"the artifact was replaced after its gates ran; nothing changed"
            )

    def record_decision(self, version: str, decision: str, *, human: str | None, actor: str, reason: str,
                        run: str) -> PromotionDecision:  # fmt: skip
        """Record a human's answer to the promotion request of ``version`` (append-only)."""
        return self.ledger().record_decision(self.name, str(version), decision, human=human, actor=actor,
                                             reason=reason, run=run)  # fmt: skip

    # -- alias moves -------------------------------------------------------------------------------------
    def set_challenger(self, version: str, actor: str, reason: str, run: str, human: str | None = None) -> AliasMove:
        """Point ``challenger`` at ``version`` (any existing version: the gates are the champion's bar)."""
        version = str(version)
        self._version(version)
        return self._move(CHALLENGER, version, compare=False, expected=None, actor=actor, reason=reason, run=run,
                          human=human)  # fmt: skip

    def promote(self, version: str, expected_champion: str | None, actor: str, reason: str, run: str,
                human: str | None = None) -> AliasMove:  # fmt: skip
        """Make ``version`` champion iff the champion is still ``expected_champion`` (None: there was none).

        ``expected_champion`` is the version the candidate was compared against; if another promotion
        or rollback happened meanwhile, the comparison is stale and :class:`PromotionConflict` is raised.
        ``human``: the person behind ``actor`` (None: the OS user, as for a CLI call).
        """
        version = str(version)
        expected = None if expected_champion is None else str(expected_champion)
        self._require_gates_passed(version)
        move = self._move(CHAMPION, version, compare=True, expected=expected, actor=actor, reason=reason, run=run,
                          refuse_retired=True, human=human)  # fmt: skip
        self._tag_promoted(move)
        return move

    def rollback(self, to_version: str | None, actor: str, reason: str, run: str,
                 human: str | None = None) -> AliasMove:  # fmt: skip
        """Put the previous good champion back (or ``to_version``) and retire the one it replaces.

        Without ``to_version`` the champion history is walked back from the newest move: the first earlier
        champion that is neither the current one nor retired is the target, so v3 -> v2 -> v1 and never
        back to v3. ``to_version`` must be a former champion by the ledger (a rollback never promotes a version
        awaiting approval). Recorded as a move of its own; compare-and-set on the current champion.
        """
        ledger = self.ledger()
        current = self.resolve(CHAMPION)
        retired = ledger.retired(self.name)
        if to_version is None:
            history = ledger.moves(self.name, CHAMPION)
            earlier = [m.to_version for m in reversed(history)]
            target = next((v for v in earlier if v != current and v not in retired), None)
            if target is None:
                raise RegistryError(
                    f"model {self.name!r} has no earlier {CHAMPION} to roll back to from version "
                    f"{show_version(current)} (rolled back already: {', '.join(sorted(retired, key=int)) or 'none'}); "
                    f"name a former champion with --to, or promote a newly trained one"
                )
        else:
            target = str(to_version)
        self._require_gates_passed(target)
        move = self._move(CHAMPION, target, compare=True, expected=current, actor=actor, reason=reason, run=run,
                          refuse_retired=True, retire_head=True, require_former=True, human=human)  # fmt: skip
        self._tag_promoted(move)
        if move.from_version is not None:
            try:  # a convenience for the MLflow UI; the ledger is the record
                self.tag_version(move.from_version, {Tags.ROLLED_BACK: f"{move.at} by {actor}: {reason}"})
            except Exception:
                log.warning("could not tag %s version %s as rolled back", self.name, move.from_version, exc_info=True)
        return move

    def resync_alias(
        self,
        alias: str,
        actor: str,
        reason: str,
        run: str,
        trust: Literal["ledger", "mlflow"] = "ledger",
        human: str | None = None,
    ) -> AliasMove | None:
        """Repair a disagreement between MLflow's alias and the ledger head (see the module docstring).

        ``trust="ledger"``: point MLflow's alias back at the ledger head (delete it if the ledger has none);
        nothing is recorded because the ledger's history is unchanged. ``trust="mlflow"``: record MLflow's
        current version as a move in the ledger (the promotion did happen, only its record was lost); for
        ``champion`` only a version that passed its gates and was never rolled back is accepted. Either way a
        head row edited by hand is first put back to the last recorded move (the moves are the record).
        """
        ledger = self.ledger()
        was, restored = ledger.restore_head(self.name, alias)
        if was != restored:
            log.warning("ledger head of %s of %s said version %s, not version %s as its last move: restored (%s)",
                        alias, self.name, show_version(was), show_version(restored), reason)  # fmt: skip
        if trust == "mlflow":
            actual = self.alias_version(alias)
            if actual is None:
                raise RegistryError(f"MLflow has no {alias!r} alias for {self.name!r}: use trust='ledger'")
            head = ledger.head(self.name, alias)
            if actual == head:
                return None
            if alias == CHAMPION:
                self._require_gates_passed(actual)
            # compare=True: if anything moved the alias meanwhile, this raises instead of guessing.
            return ledger.move(self.name, alias, actual, compare=True, expected=head, actor=actor, reason=reason,
                               run=run, refuse_retired=alias == CHAMPION, human=_human(human))  # fmt: skip
        with ledger.locked_head(self.name, alias) as (_, head):
            actual = self.alias_version(alias)
            if actual == head:
                return None
            if head is None:
                self.client.delete_registered_model_alias(self.name, alias)
            else:
                self.client.set_registered_model_alias(self.name, alias, head)
        log.warning("reset MLflow alias %s of %s from %s to the ledger head %s (%s, by %s, run %s)", alias,
                    self.name, show_version(actual), show_version(head), reason, actor, run)  # fmt: skip
        return None

    def _move(
        self,
        alias: str,
        version: str,
        *,
        compare: bool,
        expected: str | None,
        actor: str,
        reason: str,
        run: str,
        refuse_retired: bool = False,
        retire_head: bool = False,
        require_former: bool = False,
        human: str | None = None,
    ) -> AliasMove:
        def check(head: str | None) -> None:
            actual = self.alias_version(alias)
            if actual != head:
                self._sync_lagging_mirror(alias, head, actual)

        # The ledger commits first, then MLflow mirrors it: a failure in between leaves MLflow one move
        # behind, which the retry or the next reader repairs (a tampered alias is refused instead).
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
            refuse_retired=refuse_retired,
            retire_head=retire_head,
            require_former=require_former,
            human=_human(human),
        )
        self._mirror(alias, version)
        moved_from = show_version(move.from_version)
        log.info("%s of %s: %s -> %s by %s (%s)", alias, self.name, moved_from, version, actor, reason)
        return move

    def _tag_promoted(self, move: AliasMove) -> None:
        """Convenience tags for the MLflow UI; the ledger is the record, so a failure here is only logged."""
        try:
            self.tag_version(move.to_version, {"promoted_at": move.at, "promoted_by": move.actor})
        except Exception:
            log.warning("could not tag %s version %s as promoted", self.name, move.to_version, exc_info=True)


def _human(human: str | None) -> str:
    """The person behind a move: given by the caller (approver, triggering user), else the OS user (the CLI)."""
    import getpass

    return human or getpass.getuser()


def _is_remote(tracking_uri: str) -> bool:
    return tracking_uri.startswith(("http://", "https://", "databricks"))


def _logged_model_id(model_uri: str) -> str | None:
    """``models:/m-abc`` (an MLflow 3 logged model) -> ``m-abc``, so the version links to the logged model."""
    rest = model_uri.removeprefix("models:/")
    if rest != model_uri and rest.startswith("m-") and "/" not in rest:
        return rest
    return None


def _first_line(exc: BaseException) -> str:
    text = redact_text(str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__
