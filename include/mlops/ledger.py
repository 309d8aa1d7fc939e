"""The append-only ledger of alias moves: who moved which alias of which model, from what, why, in which run.

MLflow keeps only where an alias points *now*; the history is here (SQLite locally, Postgres in production),
and its head row per (model, alias) is the compare-and-set lock: two promotions compared with the same
champion cannot both win.

:meth:`Ledger.move` is ONE transaction:

1. lock the head row of (model, alias): ``BEGIN IMMEDIATE`` on SQLite (the whole database is the lock,
   taken before the first read), ``SELECT ... FOR UPDATE`` on Postgres (the head row is first inserted
   with ``ON CONFLICT DO NOTHING`` so there is always a row to lock, even before the first promotion);
2. run the caller's ``check(head)``, which may refuse the move;
3. compare the head with the caller's expectation -> :class:`PromotionConflict`, nothing changed;
4. append the move to ``alias_moves`` and update the head in ``alias_heads`` (a rollback also records the
   version it replaces in ``retired_versions``: never champion again without a new gate pass);
5. run the caller's ``apply()``: if it raises, the ledger rolls back;
6. commit.

``mlops.registry`` passes MLflow's side of the move as ``check`` and ``apply``. The head row is the lock,
not the record: every read checks it against the last recorded move (:class:`HeadTampered`). Approvals and
rejections of a promotion (``promotion_decisions``) and the gates' verdicts (``gate_verdicts``) are
append-only records too. Tables and records live in :mod:`mlops.ledger_schema`; the schema is migrated in
place (missing tables, columns and triggers are added; nothing is dropped). An unreachable (full,
read-only) database raises :class:`~mlops.errors.InfrastructureError` (retry); a URL that is not SQLite or
PostgreSQL raises :class:`RegistryError`. SQLAlchemy is imported inside functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops import ledger_schema
from mlops.errors import InfrastructureError, InputError
from mlops.ledger_schema import DECISIONS, AliasMove, GateVerdict, PromotionDecision, RetiredVersion

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

#: How long a SQLite writer waits for another writer's lock before failing ("database is locked").
SQLITE_LOCK_TIMEOUT_SECONDS = 60.0


class PromotionConflict(InputError):
    """The champion moved since the candidate was compared against it; nothing was changed."""


class RegistryError(InputError):
    """The registry refuses the request: unknown version, gates not passed, nothing to roll back to,
    MLflow and the ledger disagree, a move to the version the alias already has, or an unsupported
    ledger database. Defined here because the ledger raises it too; ``mlops.registry`` re-exports it."""


class AliasOutOfSync(RegistryError):
    """MLflow's alias and the ledger head disagree: nothing reads or moves the alias until it is resynced."""


class HeadTampered(AliasOutOfSync):
    """The ledger's head row is not where its last recorded move went (edited by hand): refused like a tampered
    MLflow alias until ``mlops models --resync`` restores it from the moves."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def ensure_sqlite_parent(url: str) -> None:
    """SQLite (for the ledger and for MLflow) fails with an opaque error when the folder is missing."""
    if not url.startswith("sqlite"):
        return
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _shown(url: str) -> str:
    """The URL for messages: its password masked."""
    from mlops.redact import redact_text

    return redact_text(url)


@contextmanager
def _database(url: str) -> Iterator[None]:
    """Database faults as :class:`InfrastructureError` (the step is retried), one line naming the ledger."""
    from sqlalchemy import exc as sa_exc

    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError) as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise InfrastructureError(
            f"ledger database {_shown(url)} failed: {_shown(detail)}. Check that it is up, reachable and "
            f"writable (registry.ledger_uri); nothing was changed, retry once it is back"
        ) from exc


#: Arbitrary constant: the Postgres advisory lock that serialises concurrent schema creation.
_PG_SCHEMA_LOCK = 7_316_482_901


class Ledger:
    """Append-only, concurrency-safe record of every alias move (SQLite locally, Postgres in production)."""

    def __init__(self, url: str) -> None:
        """Connect to the SQLAlchemy ``url`` and create the tables (and append-only triggers) if missing."""
        from sqlalchemy import create_engine, event
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        expected = "expected sqlite:///path/ledger.db or postgresql://user@host:5432/db (registry.ledger_uri)"
        try:
            backend = make_url(url).get_backend_name()
        except ArgumentError:
            raise RegistryError(f"ledger URI {_shown(url)!r} is not a database URL: {expected}") from None
        if backend not in ("sqlite", "postgresql"):
            raise RegistryError(f"ledger URI {_shown(url)!r}: unsupported database {backend!r}; {expected}")
        try:
            ensure_sqlite_parent(url)
        except OSError as exc:  # a read-only or full disk
            raise InfrastructureError(f"ledger database {_shown(url)}: cannot create its folder ({exc})") from exc
        self.url = url
        schema = ledger_schema.tables()
        self._metadata, self._heads, self._moves, self._retired = (
            schema.metadata,
            schema.heads,
            schema.moves,
            schema.retired,
        )
        self._decisions, self._verdicts = schema.decisions, schema.verdicts
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
            try:
                engine = create_engine(url, pool_pre_ping=True)
            except (NoSuchModuleError, ModuleNotFoundError) as exc:
                raise RegistryError(f"ledger URI {_shown(url)!r}: its database driver is missing ({exc})") from None
        self._engine: Engine = engine
        with _database(url):
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
            self._metadata.create_all(conn)  # creates only the missing tables: an older ledger is migrated
            for table, column, sql_type in ledger_schema.ADDED_COLUMNS:
                if not self._has_column(conn, table, column):
                    conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")
            for statement in ledger_schema.append_only_ddl(self.dialect):
                conn.exec_driver_sql(statement)

    def _has_column(self, conn: Connection, table: str, column: str) -> bool:
        from sqlalchemy import text

        query = text(ledger_schema.column_query(self.dialect))
        return bool(conn.execute(query, {"table": table, "column": column}).scalar_one())

    def _schema_ready(self) -> bool:
        """True when every table, added column and append-only trigger exists (the triggers are created last)."""
        from sqlalchemy import bindparam, text

        queries = {
            "sqlite": "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN :names",
            "postgresql": "SELECT count(DISTINCT tgname) FROM pg_trigger WHERE tgname IN :names",
        }
        names = ledger_schema.trigger_names(self.dialect)
        query = text(queries[self.dialect]).bindparams(bindparam("names", expanding=True))
        with self._engine.connect() as conn:
            if conn.execute(query, {"names": names}).scalar_one() != len(names):
                return False
            return all(self._has_column(conn, table, column) for table, column, _ in ledger_schema.ADDED_COLUMNS)

    def head(self, model: str, alias: str) -> str | None:
        """The version ``alias`` points to according to the ledger (None: never set), checked against its last
        move: :class:`HeadTampered` when the head row says otherwise."""
        with _database(self.url), self._engine.connect() as conn:
            return self._checked_head(conn, model, alias)

    def recorded_head(self, model: str, alias: str) -> str | None:
        """Where the last recorded move of ``alias`` went (None: never moved), whatever the head row says."""
        with _database(self.url), self._engine.connect() as conn:
            return self._last_to_version(conn, model, alias)

    def _checked_head(self, conn: Connection, model: str, alias: str, lock: bool = False) -> str | None:
        """The head row's version, refused when it is not where the last recorded move went.

        The head row is the compare-and-set lock, so the platform's role may update it; an update that no
        move records (typed by hand) must never name the champion.
        """
        from sqlalchemy import select

        heads, moves = self._heads, self._moves
        query = select(heads.c.version).where(heads.c.model == model, heads.c.alias == alias)
        head = conn.execute(query.with_for_update() if lock else query).scalar_one_or_none()
        last_query = (select(moves.c.id, moves.c.to_version, moves.c.at).where(moves.c.model == model,
                      moves.c.alias == alias).order_by(moves.c.id.desc()).limit(1))  # fmt: skip
        last = conn.execute(last_query).first()
        recorded = None if last is None else last.to_version
        if head != recorded:
            where = "no move at all" if last is None else f"move #{last.id} ({last.at}) to version {recorded}"
            raise HeadTampered(
                f"the ledger head of {alias} of model {model!r} says version {show_version(head)} but its last "
                f"recorded move is {where}: the head row was edited outside the platform. Nothing was read or "
                f"moved; `mlops models --resync` restores the head to version {show_version(recorded)} from the "
                f"recorded moves"
            )
        return head

    def restore_head(self, model: str, alias: str) -> tuple[str | None, str | None]:
        """Put an edited head row back to the last recorded move; returns (what it said, what it says now)."""
        from sqlalchemy import select

        heads = self._heads
        with _database(self.url), self._locked() as conn, conn.begin():
            conn.execute(self._insert_head_if_missing(model, alias))
            query = select(heads.c.version).where(heads.c.model == model, heads.c.alias == alias).with_for_update()
            was = conn.execute(query).scalar_one()
            recorded = self._last_to_version(conn, model, alias)
            if was != recorded:
                conn.execute(
                    heads.update().where(heads.c.model == model, heads.c.alias == alias).values(version=recorded)
                )
        return was, recorded

    def _last_to_version(self, conn: Connection, model: str, alias: str) -> str | None:
        from sqlalchemy import select

        moves = self._moves
        query = (select(moves.c.to_version).where(moves.c.model == model, moves.c.alias == alias)
                 .order_by(moves.c.id.desc()).limit(1))  # fmt: skip
        return conn.execute(query).scalar_one_or_none()

    def moves(self, model: str, alias: str | None = None) -> list[AliasMove]:
        """Every recorded move of ``model`` (optionally of one alias), oldest first."""
        from sqlalchemy import select

        moves = self._moves
        query = select(moves).where(moves.c.model == model).order_by(moves.c.id)
        if alias is not None:
            query = query.where(moves.c.alias == alias)
        with _database(self.url), self._engine.connect() as conn:
            return [AliasMove(**row._asdict()) for row in conn.execute(query)]

    def retired(self, model: str) -> dict[str, RetiredVersion]:
        """The versions of ``model`` that were rolled back away from, by version."""
        from sqlalchemy import select

        retired = self._retired
        query = select(retired).where(retired.c.model == model).order_by(retired.c.move_id)
        with _database(self.url), self._engine.connect() as conn:
            return {row.version: RetiredVersion(**row._asdict()) for row in conn.execute(query)}

    @contextmanager
    def locked_head(self, model: str, alias: str) -> Iterator[tuple[Connection, str | None]]:
        """One transaction holding the lock on (model, alias): yields the connection and the current head.

        Commits when the block ends, rolls back if it raises. Other writers of the same ledger wait.
        """
        with _database(self.url), self._locked() as conn, conn.begin():
            conn.execute(self._insert_head_if_missing(model, alias))
            yield conn, self._checked_head(conn, model, alias, lock=True)

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
        refuse_retired: bool = False,
        retire_head: bool = False,
        require_former: bool = False,
        human: str | None = None,
    ) -> AliasMove:
        """Record ``alias`` -> ``to_version`` in one transaction that holds the head row's lock.

        With ``compare``, the head must equal ``expected`` or :class:`PromotionConflict` is raised.
        ``check(head)`` runs under the lock before the comparison (may raise to abort); ``apply()`` runs
        after the ledger writes and before the commit, so an exception there rolls the ledger back.
        ``refuse_retired``: a rolled-back ``to_version`` raises :class:`RegistryError`; ``retire_head``
        (a rollback): the version being replaced is recorded as retired in the same transaction;
        ``require_former`` (a rollback): ``to_version`` must have held ``alias`` before, by the recorded moves.
        ``human`` is the person behind ``actor`` (the approver, the triggering user, the OS user).
        """
        heads, moves, retired = self._heads, self._moves, self._retired
        with self.locked_head(model, alias) as (conn, head):
            if check is not None:
                check(head)
            if refuse_retired:
                self._refuse_retired(conn, model, to_version)
            if require_former:
                self._refuse_never_held(conn, model, alias, to_version)
            if compare and head != expected:
                raise PromotionConflict(
                    f"{alias} of model {model!r} is version {show_version(head)}, not version {show_version(expected)} "
                    f"as the candidate was compared against; version {to_version} was NOT made {alias}. "
                    f"Nothing changed: compare the candidate against version {show_version(head)} and try again."
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
                "human": human,
            }
            move_id = conn.execute(moves.insert().values(**row)).inserted_primary_key[0]
            conn.execute(
                heads.update().where(heads.c.model == model, heads.c.alias == alias).values(version=to_version)
            )
            if retire_head and head is not None and self._retirement(conn, model, head) is None:
                conn.execute(retired.insert().values(model=model, version=head, move_id=move_id, actor=actor,
                                                     reason=reason, at=row["at"]))  # fmt: skip
            if apply is not None:
                apply()
        return AliasMove(id=int(move_id), **row)

    def _retirement(self, conn: Connection, model: str, version: str) -> RetiredVersion | None:
        from sqlalchemy import select

        retired = self._retired
        query = select(retired).where(retired.c.model == model, retired.c.version == version)
        found = conn.execute(query).first()
        return None if found is None else RetiredVersion(**found._asdict())

    def _refuse_retired(self, conn: Connection, model: str, version: str) -> None:
        retirement = self._retirement(conn, model, version)
        if retirement is not None:
            raise RegistryError(
                f"version {version} of model {model!r} was rolled back on {retirement.at} by {retirement.actor} "
                f"({retirement.reason}): it is never champion again. Train and register a new version (a new "
                f"gate pass) instead; nothing changed"
            )

    def _refuse_never_held(self, conn: Connection, model: str, alias: str, version: str) -> None:
        """A rollback goes back, never forward: only to a version an earlier move gave ``alias``."""
        from sqlalchemy import select

        moves = self._moves
        query = select(moves.c.id).where(moves.c.model == model, moves.c.alias == alias,
                                         moves.c.to_version == version).limit(1)  # fmt: skip
        if conn.execute(query).first() is None:
            raise RegistryError(
                f"version {version} of model {model!r} was never {alias} (by the ledger's moves): a rollback only "
                f"goes back to a former {alias}. Promote it instead (its gates and, with the manual policy, an "
                f"approval); nothing changed"
            )

    # -- promotion decisions and gate verdicts (append-only records) ------------------------------------------
    def record_decision(self, model: str, version: str, decision: str, *, human: str | None, actor: str,
                        reason: str, run: str) -> PromotionDecision:  # fmt: skip
        """Append a human's answer to a promotion request (``approved``, ``rejected`` or ``refused``)."""
        if decision not in DECISIONS:
            raise RegistryError(f"promotion decision {decision!r} is not one of {', '.join(DECISIONS)}")
        row = {"model": model, "version": str(version), "decision": decision, "human": human, "actor": actor,
               "reason": reason, "run": run, "at": _now()}  # fmt: skip
        with _database(self.url), self._engine.begin() as conn:
            row_id = conn.execute(self._decisions.insert().values(**row)).inserted_primary_key[0]
        return PromotionDecision(id=int(row_id), **row)

    def decisions(self, model: str) -> list[PromotionDecision]:
        """Every recorded answer to a promotion request of ``model``, oldest first."""
        from sqlalchemy import select

        table = self._decisions
        query = select(table).where(table.c.model == model).order_by(table.c.id)
        with _database(self.url), self._engine.connect() as conn:
            return [PromotionDecision(**row._asdict()) for row in conn.execute(query)]

    def record_verdict(self, verdict: GateVerdict) -> GateVerdict:
        """Append the gates' verdict on a training run (written by ``assess`` only); returns it with its id."""
        row = {**{key: value for key, value in asdict(verdict).items() if key != "id"}, "at": _now()}
        with _database(self.url), self._engine.begin() as conn:
            row_id = conn.execute(self._verdicts.insert().values(**row)).inserted_primary_key[0]
        return GateVerdict(**{**row, "id": int(row_id)})

    def verdict(self, model: str, training_run: str) -> GateVerdict | None:
        """The latest verdict recorded for ``training_run`` of ``model`` (None: never assessed by the platform)."""
        from sqlalchemy import select

        table = self._verdicts
        query = (select(table).where(table.c.model == model, table.c.training_run == training_run)
                 .order_by(table.c.id.desc()).limit(1))  # fmt: skip
        with _database(self.url), self._engine.connect() as conn:
            found = conn.execute(query).first()
        return None if found is None else GateVerdict(**found._asdict())

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


@contextmanager
def exclusive(url: str, name: str, fallback_dir: Path) -> Iterator[None]:
    """Hold the platform-wide lock ``name`` for the block: one holder at a time across every worker.

    On PostgreSQL (production) it is a session-level advisory lock on a dedicated connection: workers on
    different hosts share it, and a holder that dies (SIGKILL, lost host) releases it with its connection.
    A SQLite ledger is a single machine's file, so there the lock is a file lock in ``fallback_dir``.
    """
    if url.startswith("sqlite"):
        import fcntl

        fallback_dir.mkdir(parents=True, exist_ok=True)
        with open(fallback_dir / f".{name}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with _database(url):
            conn = engine.connect()
            conn.execute(text("SELECT pg_advisory_lock(hashtext(:name))"), {"name": name})
            conn.commit()
        try:
            yield
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(hashtext(:name))"), {"name": name})
                conn.close()
            except sa_exc.SQLAlchemyError:
                pass  # the connection is gone: the server has released its lock with it
    finally:
        engine.dispose()


def show_version(version: str | None) -> str:
    """A version for messages: ``<none>`` when the alias was never set."""
    return "<none>" if version is None else str(version)
