"""The append-only ledger of alias moves: who moved which alias of which model, from what, why, in which run.

MLflow keeps only where an alias points *now*. The history is kept here, in an append-only table
(SQLite locally, Postgres in production), and that table's head row per (model, alias) is the lock
that makes promotion a compare-and-set: two pipelines that compared their candidates against the same
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

``mlops.registry`` passes MLflow's side of the move as ``check`` and ``apply``. The schema is created and
migrated in place (missing tables and triggers are added; nothing is altered or dropped), so an older
ledger gains ``retired_versions`` on first use. A database that cannot be reached (or is full, or
read-only) raises :class:`~mlops.errors.InfrastructureError` (retry); a URL that is not SQLite or
PostgreSQL raises :class:`RegistryError`. ``import mlops.ledger`` stays cheap: SQLAlchemy is imported
inside functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.errors import InfrastructureError, InputError

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine, MetaData, Table

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


@dataclass(frozen=True)
class RetiredVersion:
    """A version rolled back away from: never a rollback target nor promotable again.

    A new gate pass means a new training run, so a new version.
    """

    model: str
    version: str
    move_id: int  # the rollback move that retired it
    actor: str
    reason: str
    at: str


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


def _tables() -> tuple[MetaData, Table, Table, Table]:
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
    retired = Table(
        "retired_versions",
        metadata,
        Column("model", String(255), primary_key=True),
        Column("version", String(64), primary_key=True),
        Column("move_id", Integer, nullable=False),
        Column("actor", String(255), nullable=False),
        Column("reason", Text, nullable=False),
        Column("at", String(40), nullable=False),
    )
    return metadata, heads, moves, retired


# The ledger is append-only by construction (no code path updates or deletes a move or a retirement) and
# in the database too, so a hand-typed UPDATE cannot rewrite history nor bring a rolled-back version back.
_APPEND_ONLY_TABLES = ("alias_moves", "retired_versions")


def _append_only_ddl(dialect: str) -> list[str]:
    """Idempotent DDL (``IF NOT EXISTS`` / ``OR REPLACE``): re-running it on an existing ledger is a no-op."""
    statements = []
    for table in _APPEND_ONLY_TABLES:
        if dialect == "sqlite":
            statements += [
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{action} BEFORE {action.upper()} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                for action in ("update", "delete")
            ]
        else:
            statements += [
                f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN RAISE EXCEPTION '{table} is append-only'; END $$",
                f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()",
            ]
    return statements


def _trigger_names(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return [f"{table}_no_{action}" for table in _APPEND_ONLY_TABLES for action in ("update", "delete")]
    return [f"{table}_append_only" for table in _APPEND_ONLY_TABLES]


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
        self._metadata, self._heads, self._moves, self._retired = _tables()
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
            for statement in _append_only_ddl(self.dialect):
                conn.exec_driver_sql(statement)

    def _schema_ready(self) -> bool:
        """True when every table and append-only trigger exists (the triggers are created last)."""
        from sqlalchemy import bindparam, text

        queries = {
            "sqlite": "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN :names",
            "postgresql": "SELECT count(DISTINCT tgname) FROM pg_trigger WHERE tgname IN :names",
        }
        names = _trigger_names(self.dialect)
        query = text(queries[self.dialect]).bindparams(bindparam("names", expanding=True))
        with self._engine.connect() as conn:
            return conn.execute(query, {"names": names}).scalar_one() == len(names)

    def head(self, model: str, alias: str) -> str | None:
        """The version ``alias`` points to according to the ledger (None: never set)."""
        from sqlalchemy import select

        heads = self._heads
        with _database(self.url), self._engine.connect() as conn:
            query = select(heads.c.version).where(heads.c.model == model, heads.c.alias == alias)
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
        from sqlalchemy import select

        heads = self._heads
        with _database(self.url), self._locked() as conn, conn.begin():
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
        refuse_retired: bool = False,
        retire_head: bool = False,
    ) -> AliasMove:
        """Record ``alias`` -> ``to_version`` in one transaction that holds the head row's lock.

        With ``compare``, the head must equal ``expected`` or :class:`PromotionConflict` is raised.
        ``check(head)`` runs under the lock before the comparison (may raise to abort); ``apply()`` runs
        after the ledger writes and before the commit, so an exception there rolls the ledger back.
        ``refuse_retired``: a rolled-back ``to_version`` raises :class:`RegistryError`; ``retire_head``
        (a rollback): the version being replaced is recorded as retired in the same transaction.
        """
        heads, moves, retired = self._heads, self._moves, self._retired
        with self.locked_head(model, alias) as (conn, head):
            if check is not None:
                check(head)
            if refuse_retired:
                self._refuse_retired(conn, model, to_version)
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
