"""MLflow registration, the ``challenger``/``champion`` aliases, compare-and-set promotion, a ledger, rollback.

Why a ledger beside MLflow: MLflow keeps only where an alias points *now*. Who moved it, from what, why
and in which run is kept in an append-only table (SQLite locally, Postgres in production), and that
table's head row per (model, alias) is the lock that makes promotion a compare-and-set: two pipelines
that compared their candidates against the same champion cannot both win.

One alias move, in ONE ledger transaction:

1. lock the head row of (model, alias): ``BEGIN IMMEDIATE`` on SQLite (the whole database is the lock,
   taken before the first read), ``SELECT ... FOR UPDATE`` on Postgres (the head row is first inserted
   with ``ON CONFLICT DO NOTHING`` so there is always a row to lock, even before the first promotion);
2. check that MLflow's alias still agrees with the ledger head (see "the window" below);
3. compare the head with the caller's expectation -> :class:`PromotionConflict`, nothing changed;
4. append the move to ``alias_moves`` and update the head in ``alias_heads``;
5. set the alias in MLflow, still inside the transaction: if MLflow fails, the ledger rolls back;
6. commit.

The window: if the commit itself fails after step 5, MLflow points at the new version and the ledger
does not. The next move of that alias notices (step 2) and raises :class:`RegistryError` explaining
the fix: :meth:`Registry.resync_alias` either resets MLflow to the ledger head or records MLflow's
version in the ledger. Readers of MLflow alone (batch scoring) may also see the new champion a few
milliseconds before the ledger commits; that is harmless because the move is then committed or fixed.

``import mlops.registry`` stays cheap: SQLAlchemy and MLflow are imported inside functions.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion
    from sqlalchemy import Connection, Engine, MetaData, Table

    from mlops.config import Settings

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
ALIASES = (CHAMPION, CHALLENGER)
#: Version tag set by the caller after evaluation; only "true" may become champion.
GATES_TAG = "gates.passed"
#: Version tag holding the ``models:/...`` URI the version was registered from (its lineage to the logged model).
SOURCE_TAG = "source_model_uri"
#: MLflow's own logged-model tag listing the registered versions made from it (shown in the UI).
LOGGED_MODEL_VERSIONS_TAG = "mlflow.modelVersions"
#: How long ``register`` waits for a new version to become READY (remote registries copy artifacts).
READY_TIMEOUT_SECONDS = 300.0
#: How long a SQLite writer waits for another writer's lock before failing ("database is locked").
SQLITE_LOCK_TIMEOUT_SECONDS = 60.0


class PromotionConflict(RuntimeError):
    """The champion moved since the candidate was compared against it; nothing was changed."""


class RegistryError(RuntimeError):
    """The registry refuses the request: unknown version, gates not passed, nothing to roll back to,
    or MLflow and the ledger disagree."""


@dataclass(frozen=True)
class AliasMove:
    """One row of the ledger: ``alias`` of ``model`` went from ``from_version`` to ``to_version``."""

    id: int
    model: str
    alias: str
    from_version: str | None
    to_version: str
    actor: str
    reason: str
    run: str
    at: str  # ISO-8601 UTC


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _ensure_sqlite_parent(url: str) -> None:
    """SQLite (for the ledger and for MLflow) fails with an opaque error when the folder is missing."""
    if not url.startswith("sqlite"):
        return
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _tables() -> tuple[MetaData, Table, Table]:
    from sqlalchemy import Column, Integer, MetaData, String, Table, Text

    metadata = MetaData()
    heads = Table(
        "alias_heads",
        metadata,
        Column("model", String(255), primary_key=True),
        Column("alias", String(64), primary_key=True),
        Column("version", String(64), nullable=True),  # NULL: the alias has never been set
    )
    moves = Table(
        "alias_moves",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("model", String(255), nullable=False, index=True),
        Column("alias", String(64), nullable=False),
        Column("from_version", String(64), nullable=True),
        Column("to_version", String(64), nullable=False),
        Column("actor", String(255), nullable=False),
        Column("reason", Text, nullable=False),
        Column("run", String(255), nullable=False),
        Column("at", String(40), nullable=False),
    )
    return metadata, heads, moves


# The ledger is append-only by construction (no code path updates or deletes a move) and in the
# database too, so a hand-typed UPDATE cannot rewrite history.
_APPEND_ONLY_DDL = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS alias_moves_no_update BEFORE UPDATE ON alias_moves "
        "BEGIN SELECT RAISE(ABORT, 'alias_moves is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS alias_moves_no_delete BEFORE DELETE ON alias_moves "
        "BEGIN SELECT RAISE(ABORT, 'alias_moves is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION alias_moves_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'alias_moves is append-only'; END $$",
        "CREATE OR REPLACE TRIGGER alias_moves_append_only BEFORE UPDATE OR DELETE ON alias_moves "
        "FOR EACH ROW EXECUTE FUNCTION alias_moves_append_only()",
    ],
}
#: Arbitrary constant: the Postgres advisory lock that serialises concurrent schema creation.
_PG_SCHEMA_LOCK = 7_316_482_901


class Ledger:
    """Append-only, concurrency-safe record of every alias move (SQLite locally, Postgres in production)."""

    def __init__(self, url: str) -> None:
        """Connect to the SQLAlchemy ``url`` and create the tables (and append-only triggers) if missing."""
        from sqlalchemy import create_engine, event

        _ensure_sqlite_parent(url)
        self.url = url
        self._metadata, self._heads, self._moves = _tables()
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": SQLITE_LOCK_TIMEOUT_SECONDS})

            # SQLAlchemy's recipe: stop the sqlite3 driver from issuing its own (deferred, DML-only) BEGIN
            # and issue ours, so a compare-and-set transaction can take the write lock *before* it reads.
            @event.listens_for(engine, "connect")
            def _no_driver_begin(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.isolation_level = None

            @event.listens_for(engine, "begin")
            def _begin(conn: Connection) -> None:
                mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
                conn.exec_driver_sql(f"BEGIN {mode}")
        else:
            engine = create_engine(url, pool_pre_ping=True)
        if engine.dialect.name not in ("sqlite", "postgresql"):
            engine.dispose()
            raise RegistryError(f"ledger {url!r}: unsupported database {engine.dialect.name!r} (SQLite or PostgreSQL)")
        self._engine: Engine = engine
        self._create_schema()

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def _locked(self) -> Connection:
        """A connection whose next transaction holds the write lock from its start (SQLite) on."""
        return self._engine.connect().execution_options(sqlite_begin="IMMEDIATE")

    def _create_schema(self) -> None:
        """Idempotent and safe when several workers start at once (one transaction, serialised)."""
        from sqlalchemy import text

        if self._schema_ready():
            return  # the common case: no DDL, no write lock, no wait behind a running promotion
        with self._locked() as conn, conn.begin():
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_SCHEMA_LOCK})
            self._metadata.create_all(conn)
            for statement in _APPEND_ONLY_DDL[self.dialect]:
                conn.exec_driver_sql(statement)

    def _schema_ready(self) -> bool:
        """True when the tables and the append-only triggers exist (the triggers are created last)."""
        from sqlalchemy import text

        queries = {
            "sqlite": "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
            "AND name IN ('alias_moves_no_update', 'alias_moves_no_delete')",
            "postgresql": "SELECT count(*) FROM pg_trigger WHERE tgname = 'alias_moves_append_only'",
        }
        expected = {"sqlite": 2, "postgresql": 1}
        with self._engine.connect() as conn:
            return conn.execute(text(queries[self.dialect])).scalar_one() == expected[self.dialect]

    def head(self, model: str, alias: str) -> str | None:
        """The version ``alias`` points to according to the ledger (None: never set)."""
        from sqlalchemy import select

        heads = self._heads
        with self._engine.connect() as conn:
            query = select(heads.c.version).where(heads.c.model == model, heads.c.alias == alias)
            return conn.execute(query).scalar_one_or_none()

    def moves(self, model: str, alias: str | None = None) -> list[AliasMove]:
        """Every recorded move of ``model`` (optionally of one alias), oldest first."""
        from sqlalchemy import select

        moves = self._moves
        query = select(moves).where(moves.c.model == model).order_by(moves.c.id)
        if alias is not None:
            query = query.where(moves.c.alias == alias)
        with self._engine.connect() as conn:
            return [AliasMove(**row._asdict()) for row in conn.execute(query)]

    @contextmanager
    def locked_head(self, model: str, alias: str) -> Iterator[tuple[Connection, str | None]]:
        """One transaction holding the lock on (model, alias): yields the connection and the current head.

        Commits when the block ends, rolls back if it raises. Other writers of the same ledger wait.
        """
        from sqlalchemy import select

        heads = self._heads
        with self._locked() as conn, conn.begin():
            conn.execute(self._insert_head_if_missing(model, alias))
            locked = select(heads.c.version).where(heads.c.model == model, heads.c.alias == alias).with_for_update()
            yield conn, conn.execute(locked).scalar_one()

    def move(
        self,
        model: str,
        alias: str,
        to_version: str,
        *,
        compare: bool,
        expected: str | None,
        actor: str,
        reason: str,
        run: str,
        check: Callable[[str | None], None] | None = None,
        apply: Callable[[], None] | None = None,
    ) -> AliasMove:
        """Record ``alias`` -> ``to_version`` in one transaction that holds the head row's lock.

        With ``compare``, the head must equal ``expected`` or :class:`PromotionConflict` is raised.
        ``check(head)`` runs under the lock before the comparison (may raise to abort); ``apply()`` runs
        after the ledger writes and before the commit, so an exception there rolls the ledger back.
        """
        heads, moves = self._heads, self._moves
        with self.locked_head(model, alias) as (conn, head):
            if check is not None:
                check(head)
            if compare and head != expected:
                raise PromotionConflict(
                    f"{alias} of model {model!r} is version {_show(head)}, not version {_show(expected)} "
                    f"as the candidate was compared against; version {to_version} was NOT made {alias}. "
                    f"Nothing changed: compare the candidate against version {_show(head)} and try again."
                )
            if head == to_version:
                raise RegistryError(f"{alias} of model {model!r} is already version {to_version}; nothing recorded")
            row = {
                "model": model,
                "alias": alias,
                "from_version": head,
                "to_version": to_version,
                "actor": actor,
                "reason": reason,
                "run": run,
                "at": _now(),
            }
            move_id = conn.execute(moves.insert().values(**row)).inserted_primary_key[0]
            conn.execute(
                heads.update().where(heads.c.model == model, heads.c.alias == alias).values(version=to_version)
            )
            if apply is not None:
                apply()
        return AliasMove(id=int(move_id), **row)

    def _insert_head_if_missing(self, model: str, alias: str) -> Any:
        """Give ``SELECT ... FOR UPDATE`` a row to lock even before the alias was ever set."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(self._heads).values(model=model, alias=alias, version=None).on_conflict_do_nothing()

    def dispose(self) -> None:
        """Close pooled connections (tests, short-lived CLI processes)."""
        self._engine.dispose()


def _show(version: str | None) -> str:
    return "<none>" if version is None else str(version)


class Registry:
    """The model registry for ``settings.model_name``: MLflow holds versions and aliases, the ledger the history."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.name = settings.model_name

    # -- connections -------------------------------------------------------------------------------------
    @cached_property
    def client(self) -> MlflowClient:
        """An MLflow client with explicit URIs: with none set, MLflow writes into the current directory."""
        import mlflow

        uri = self.settings.mlflow_tracking_uri
        _ensure_sqlite_parent(uri)
        return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)

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
            _show(actual),
            _show(head),
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
                    f"MLflow alias {alias!r} of {self.name!r} points to version {_show(actual)} but the ledger "
                    f"head is {_show(head)}: an earlier move's ledger commit failed after MLflow was updated, or "
                    f"the alias was moved outside this registry. Nothing changed. Fix it with "
                    f"`Registry(settings).resync_alias({alias!r}, actor, reason, run, trust='ledger')` to put "
                    f"MLflow back to {_show(head)}, or trust='mlflow' to record version {_show(actual)} in "
                    f"the ledger; then retry."
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
        log.info("%s of %s: %s -> %s by %s (%s)", alias, self.name, _show(move.from_version), version, actor, reason)
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
