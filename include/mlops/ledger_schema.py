"""The ledger's records and schema: row dataclasses, tables, append-only triggers, migration, Postgres roles.

One definition serves three uses: :class:`mlops.ledger.Ledger` creates (or migrates) a SQLite or Postgres
ledger it owns; :func:`postgres_schema_sql` writes the same schema as the SQL script the production stack
runs once as the *owner* role (``include/docker/ledger-schema.sql``, checked equal by
``tests/unit/test_compose.py``), granting the *runtime* role only what a move needs: SELECT/INSERT on the
append-only tables and SELECT/INSERT/UPDATE on the head rows. The runtime role owns nothing, so it can
neither drop a trigger nor rewrite history; the head rows it may update are checked against the last move on
every read (:mod:`mlops.ledger`). ``import mlops.ledger_schema`` stays cheap: SQLAlchemy is imported inside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import MetaData, Table


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
    human: str | None = None  # the person behind ``actor`` (approver, triggering user, OS user)


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


#: The answers a promotion request can get: a human's approval or rejection, or an answer the platform refused
#: (the responder may not approve this run: not an approver, or the run's own triggering user).
DECISIONS = ("approved", "rejected", "refused")


@dataclass(frozen=True)
class PromotionDecision:
    """A human's answer to a promotion request, as recorded (append-only)."""

    id: int
    model: str
    version: str
    decision: str  # one of DECISIONS
    human: str | None  # who answered (None: nobody, the request timed out)
    actor: str
    reason: str
    run: str
    at: str


@dataclass(frozen=True)
class GateVerdict:
    """The gates' verdict on one training run, bound to what was assessed (append-only, written by ``assess``).

    A version is promotable only when the verdict of its training run passed and the model artifact it serves
    still hashes to ``artifact_sha256``; MLflow tags are never read for this.
    """

    model: str
    training_run: str
    passed: bool
    champion_compared: str | None
    artifact_sha256: str
    holdout_sha256: str
    report_sha256: str
    actor: str
    run: str
    at: str = ""  # set by the ledger when recorded
    id: int = 0


@dataclass(frozen=True)
class Schema:
    metadata: MetaData
    heads: Table
    moves: Table
    retired: Table
    decisions: Table
    verdicts: Table


def tables() -> Schema:
    from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, Text

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
        Column("human", String(255), nullable=True),  # the person behind the system actor (NULL: older rows)
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
    decisions = Table(
        "promotion_decisions",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("model", String(255), nullable=False, index=True),
        Column("version", String(64), nullable=False),
        Column("decision", String(16), nullable=False),  # approved / rejected / refused
        Column("human", String(255), nullable=True),  # who answered (NULL: nobody, the request timed out)
        Column("actor", String(255), nullable=False),
        Column("reason", Text, nullable=False),
        Column("run", String(255), nullable=False),
        Column("at", String(40), nullable=False),
    )
    verdicts = Table(
        "gate_verdicts",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("model", String(255), nullable=False, index=True),
        Column("training_run", String(64), nullable=False, index=True),
        Column("passed", Boolean, nullable=False),
        Column("champion_compared", String(64), nullable=True),
        Column("artifact_sha256", String(64), nullable=False),
        Column("holdout_sha256", String(64), nullable=False),
        Column("report_sha256", String(64), nullable=False),
        Column("actor", String(255), nullable=False),
        Column("run", String(255), nullable=False),
        Column("at", String(40), nullable=False),
    )
    return Schema(metadata, heads, moves, retired, decisions, verdicts)


# The ledger is append-only by construction (no code path updates or deletes these rows) and in the database
# too, so a hand-typed UPDATE cannot rewrite history, bring a rolled-back version back or forge a verdict.
APPEND_ONLY_TABLES = ("alias_moves", "retired_versions", "promotion_decisions", "gate_verdicts")
#: Columns added after a table first shipped: (table, column, SQL type); added in place by the migration.
ADDED_COLUMNS = (("alias_moves", "human", "VARCHAR(255)"),)
#: What the Postgres runtime role may do per table (it owns nothing: no DDL, no trigger changes).
RUNTIME_GRANTS = {
    "alias_heads": "SELECT, INSERT, UPDATE",
    "alias_moves": "SELECT, INSERT",
    "retired_versions": "SELECT, INSERT",
    "promotion_decisions": "SELECT, INSERT",
    "gate_verdicts": "SELECT, INSERT",
}
#: The serial columns' sequences the runtime role draws ids from.
RUNTIME_SEQUENCES = ("alias_moves_id_seq", "promotion_decisions_id_seq", "gate_verdicts_id_seq")


def append_only_ddl(dialect: str) -> list[str]:
    """Idempotent DDL (``IF NOT EXISTS`` / ``OR REPLACE``): re-running it on an existing ledger is a no-op."""
    statements = []
    for table in APPEND_ONLY_TABLES:
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


def trigger_names(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return [f"{table}_no_{action}" for table in APPEND_ONLY_TABLES for action in ("update", "delete")]
    return [f"{table}_append_only" for table in APPEND_ONLY_TABLES]


def column_query(dialect: str) -> str:
    """Counts the columns of :data:`ADDED_COLUMNS` that exist (parameters ``table``, ``column``)."""
    if dialect == "sqlite":
        return "SELECT count(*) FROM pragma_table_info(:table) WHERE name = :column"
    return "SELECT count(*) FROM information_schema.columns WHERE table_name = :table AND column_name = :column"


def postgres_schema_sql(database: str = "mlops", owner: str = "mlops_owner", runtime: str = "mlops") -> str:
    """The ledger's schema as a psql script run once by the superuser: objects owned by ``owner``, ``runtime``
    granted per :data:`RUNTIME_GRANTS`. ``include/docker/ledger-schema.sql`` is this text."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex, CreateTable

    schema = tables()
    dialect = postgresql.dialect()
    lines = [
        "-- GENERATED by mlops.ledger_schema.postgres_schema_sql(); do not edit (tests/unit/test_compose.py).",
        f"-- The promotion ledger's schema, owned by {owner} (migrations); {runtime} (the platform) may only",
        "-- read, append and move the head rows: it can neither drop the append-only triggers nor rewrite history.",
        "\\set ON_ERROR_STOP on",
        f"\\connect {database}",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC;",
        f"SET ROLE {owner};",
    ]
    for table in schema.metadata.sorted_tables:
        lines.append(str(CreateTable(table).compile(dialect=dialect)).strip() + ";")
        indexes = sorted(table.indexes, key=lambda index: str(index.name))
        lines += [str(CreateIndex(index).compile(dialect=dialect)).strip() + ";" for index in indexes]
    lines += [f"{statement};" for statement in append_only_ddl("postgresql")]
    lines += [f"GRANT {rights} ON {table} TO {runtime};" for table, rights in RUNTIME_GRANTS.items()]
    lines += [f"GRANT USAGE ON SEQUENCE {sequence} TO {runtime};" for sequence in RUNTIME_SEQUENCES]
    lines.append("RESET ROLE;")
    text = "\n".join(lines).replace("\t", "    ")
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
