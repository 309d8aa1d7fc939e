"""Great Expectations for the validation step: the contract's suite, its runner, Data Docs.

Speed without losing GX: the suite uses GX's *aggregate* expectations (column type, proportion of
non-null / unique values, min, max, distinct values), which give the same verdict as their row-level
twins in one pass over each column. Only when one fails does :meth:`GxRunner.offending_ids` run its
row-level twin on that column to quote offending ids. The verdict itself is built in ``mlops.validation``.

Tolerances (``mlops.data.contract``): nulls tolerated in a ``nullable: false`` column are in the aggregate
non-null proportion's bound like any allowance. Unknown categories need a row count the aggregate in-set
expectation does not give, so a column with ``max_unknown_fraction`` gets GX's row-level
``ExpectColumnValuesToBeInSet`` with ``mostly = 1 - max_unknown_fraction`` in the suite itself: GX decides
warning (success with unexpected rows) or failure, and Data Docs show the same verdict as the day's.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.data.publish import publish_file

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from mlops.config import Settings
    from mlops.data.contract import Contract
    from mlops.data.lake import Lake

#: Contract type -> the pandas dtype our reader produces for it (see :func:`to_pandas`).
PANDAS_DTYPES = {
    "int64": "Int64",
    "float64": "float64",
    "string": "string",
    "bool": "boolean",
    "timestamp": "datetime64[us, UTC]",
}
#: Aggregate expectation -> (rule name in reasons, row-level twin that lists offending rows).
RULES: dict[str, tuple[str, str | None]] = {
    "expect_table_row_count_to_be_between": ("row_count", None),
    "expect_column_type_to_be": ("type", None),
    "expect_column_proportion_of_non_null_values_to_be_between": (
        "not_null",
        "ExpectColumnValuesToNotBeNull",
    ),
    "expect_column_min_to_be_between": ("min", "ExpectColumnValuesToBeBetween"),
    "expect_column_max_to_be_between": ("max", "ExpectColumnValuesToBeBetween"),
    "expect_column_distinct_values_to_be_in_set": ("allowed_values", "ExpectColumnValuesToBeInSet"),
    "expect_column_values_to_be_in_set": ("allowed_values", "ExpectColumnValuesToBeInSet"),  # with a tolerance
    "expect_column_proportion_of_unique_values_to_be_between": ("unique", "ExpectColumnValuesToBeUnique"),
}
#: ``meta["rule"]`` of the min/max expectations on the event-time column: reasons name it ``event_time``.
EVENT_TIME_RULE = "event_time"


def canonical_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """One Arrow type per contract type family, so the type check compares families, not storage widths.

    Any integer width -> int64; any float width -> float64; any timestamp unit, with or without a time zone,
    and dates -> timestamp[us, UTC] (a zone-less timestamp is read as UTC); dictionary and view strings ->
    their plain values. Anything else is left alone for the type check to report. Already-canonical
    columns are not touched (no copy).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_dictionary(kind):
        return canonical_column(column.cast(kind.value_type))
    target: pa.DataType | None = None
    if pa.types.is_integer(kind) and kind != pa.int64():
        target = pa.int64()
    elif pa.types.is_floating(kind) and kind != pa.float64():
        target = pa.float64()
    elif pa.types.is_string_view(kind):
        target = pa.string()
    elif pa.types.is_date(kind) or (pa.types.is_timestamp(kind) and (kind.unit, kind.tz) != ("us", "UTC")):
        target = pa.timestamp("us", tz="UTC")
    if target is None:
        return column
    try:
        # Unsafe only in the sub-microsecond digits of ns timestamps, which no contract rule reads.
        return pc.cast(column, target, safe=not pa.types.is_timestamp(kind))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return column  # e.g. uint64 beyond int64: the type check names the column and its type


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow -> pandas with dtypes that keep the contract's types apart (nullable ints, real strings)."""
    import pandas as pd
    import pyarrow as pa

    table = pa.table({name: canonical_column(column) for name, column in zip(table.column_names, table.columns,
                                                                              strict=True)})  # fmt: skip
    mapping = {
        pa.int64(): pd.Int64Dtype(), pa.string(): pd.StringDtype("pyarrow"),
        pa.large_string(): pd.StringDtype("pyarrow"), pa.bool_(): pd.BooleanDtype(),
    }  # fmt: skip
    return table.to_pandas(types_mapper=mapping.get, self_destruct=True, split_blocks=True)


def build_suite(contract: Contract, present: list[str], row_range: tuple[int, int | None],
                event_time: tuple[str, dt.datetime, dt.datetime] | None = None) -> Any:  # fmt: skip
    """The GX suite for a contract: aggregate expectations only (see module docstring).

    ``event_time`` (column, earliest, latest) adds the event-time rule: the column's min and max within the
    partition's day and its tolerance (``Contract.event_time_window``), marked ``meta.rule = event_time``.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    expected_columns = list(contract.columns)
    expectations: list[Any] = [
        gxe.ExpectTableColumnsToMatchSet(column_set=expected_columns, exact_match=contract.extra_columns == "forbid"),
        gxe.ExpectTableRowCountToBeBetween(min_value=row_range[0], max_value=row_range[1]),
    ]
    for name, rule in contract.columns.items():
        if name not in present:
            continue  # reported once by the column-set expectation
        expectations.append(gxe.ExpectColumnTypeToBe(column=name, type_=PANDAS_DTYPES[rule.type]))
        min_non_null = 1.0 - rule.max_null_fraction  # nulls allowed (nullable) or tolerated with a warning (not)
        expectations.append(
            gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(column=name, min_value=min_non_null, max_value=1.0)
        )
        if rule.min is not None:
            expectations.append(gxe.ExpectColumnMinToBeBetween(column=name, min_value=rule.min))
        if rule.max is not None:
            expectations.append(gxe.ExpectColumnMaxToBeBetween(column=name, max_value=rule.max))
        if rule.allowed is not None and rule.max_unknown_fraction:  # GX's `mostly`: unknown rows up to the tolerance
            mostly = 1.0 - rule.max_unknown_fraction
            expectations.append(gxe.ExpectColumnValuesToBeInSet(column=name, value_set=rule.allowed, mostly=mostly))
        elif rule.allowed is not None:
            expectations.append(gxe.ExpectColumnDistinctValuesToBeInSet(column=name, value_set=rule.allowed))
        if rule.unique:
            expectations.append(gxe.ExpectColumnProportionOfUniqueValuesToBeBetween(column=name, min_value=1.0))
    if event_time is not None and event_time[0] in present:
        column, earliest, latest = event_time
        meta = {"rule": EVENT_TIME_RULE}
        expectations.append(gxe.ExpectColumnMinToBeBetween(column=column, min_value=earliest, meta=meta))
        expectations.append(gxe.ExpectColumnMaxToBeBetween(column=column, max_value=latest, meta=meta))
    name = f"{contract.name}-contract-v{contract.version}".replace(".", "_")
    return gx.ExpectationSuite(name=name, expectations=expectations)


class GxRunner:
    """An ephemeral GX context whose Data Docs site is the lake's (``Lake.data_docs``)."""

    SITE = "mlops"

    def __init__(self, settings: Settings, lake: Lake) -> None:
        import great_expectations as gx

        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = {"globally": False}
        self.context.add_data_docs_site(site_name=self.SITE, site_config=self._site_config(settings, lake))
        source = self.context.data_sources.add_pandas("lake")
        self.batch_definition = source.add_dataframe_asset("partition").add_batch_definition_whole_dataframe("day")

    @staticmethod
    def _site_config(settings: Settings, lake: Lake) -> dict[str, Any]:
        # GX 1.x only renders Data Docs to a filesystem; for an S3 lake we render under MLOPS_HOME and upload.
        base = _local_site(settings) if lake.is_s3 else lake.data_docs()
        return {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(base)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }

    def publish_docs(self, settings: Settings, lake: Lake, page_url: str) -> str:
        """On an S3 lake, copy the rendered page (and the site's static assets once) to the lake's site."""
        if not lake.is_s3:
            return page_url
        local_root = _local_site(settings)
        page = Path(page_url.removeprefix("file://"))
        remote_page = lake.data_docs(page.relative_to(local_root).as_posix())
        publish_file(lake, str(page), remote_page)
        publish_file(lake, str(local_root / "index.html"), lake.data_docs("index.html"))
        if not lake.exists(lake.data_docs("static")):
            lake.fs.put(str(local_root / "static"), lake.data_docs("static"), recursive=True)
        return lake.url(remote_page)

    def run_checkpoint(self, suite: Any, frame: pd.DataFrame, render_docs: bool) -> tuple[Any, str | None]:
        import great_expectations as gx
        from great_expectations.checkpoint import UpdateDataDocsAction

        suite = self.context.suites.add(suite)
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=suite.name, data=self.batch_definition, suite=suite)
        )
        actions = [UpdateDataDocsAction(name="data_docs", site_names=[self.SITE])] if render_docs else []
        checkpoint = self.context.checkpoints.add(
            gx.Checkpoint(name=f"{suite.name}.checkpoint", validation_definitions=[definition], actions=actions)
        )
        result = checkpoint.run(batch_parameters={"dataframe": frame})
        identifier, validation = next(iter(result.run_results.items()))
        docs = None
        if render_docs:
            urls = self.context.get_docs_sites_urls(resource_identifier=identifier, site_names=[self.SITE])
            docs = urls[0]["site_url"] if urls else None
        return validation, docs

    def offending_ids(self, frame: pd.DataFrame, expectation: Any, id_column: str, limit: int) -> list[Any]:
        """Run the row-level twin of a failed aggregate expectation to name the rows that broke it.

        GX looks up every offending row's index one by one, which takes seconds when most rows offend;
        we only quote ``limit`` ids, so search growing head slices and stop once enough are found.
        """
        size = 10_000
        while True:
            part = frame.head(size)
            batch = self.batch_definition.get_batch(batch_parameters={"dataframe": part})
            result = batch.validate(
                expectation,
                result_format={
                    "result_format": "SUMMARY",
                    "unexpected_index_column_names": [id_column],
                    "partial_unexpected_count": limit,
                },
            )
            rows = result.result.get("partial_unexpected_index_list") or []
            ids = list(dict.fromkeys(plain(row.get(id_column)) for row in rows))  # duplicates list an id twice
            if len(ids) >= limit or len(part) == len(frame):
                return ids[:limit]
            size *= 10


def plain(value: Any) -> Any:
    """numpy / pandas scalars -> JSON-friendly Python values."""
    if hasattr(value, "item"):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def row_level_twin(name: str, kwargs: dict[str, Any]) -> Any:
    """The row-level expectation named ``name`` on the failed aggregate's column and bounds."""
    import great_expectations.expectations as gxe

    column = kwargs["column"]
    if name == "ExpectColumnValuesToBeBetween":
        return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=kwargs.get("min_value"),
                                                 max_value=kwargs.get("max_value"))  # fmt: skip
    if name == "ExpectColumnValuesToBeInSet":
        return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=kwargs["value_set"])
    return getattr(gxe, name)(column=column)


def _local_site(settings: Settings) -> Path:
    """Where GX renders the site for an S3 lake (GX 1.x renders to a filesystem only) before the upload."""
    return settings.reports_dir / "data_docs"
