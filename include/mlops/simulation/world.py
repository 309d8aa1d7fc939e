"""The simulated producer: lands each day's transactions and delivers their labels when they are due.

Raw days go through the producer's own ``land_days`` (staged, ``_SUCCESS`` last) and corrupted days
through ``inject_fault``. Labels are delivered here, day by day, because a scenario can make them late
(``late_labels``) and ``land_days`` only lands labels exactly ``delay_days`` after their day.

The generator applies one drift per day. When a covariate shift and a concept (or prior) drift are in
effect together, the inputs come from the generator with the covariate shift and the labels are drawn
from the generator's own label model (``_label``: the baseline concept mixed with the drifted one, with
the same latent risk) on those shifted inputs, from a seeded stream of their own.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlops.config import Settings
from mlops.data import generator
from mlops.data.faults import inject_fault
from mlops.data.generator import CATEGORIES, LABELS_SCHEMA, DriftSpec, LabelInputs, generate_day
from mlops.data.lake import Lake
from mlops.data.landing import DATA_FILE, land_days
from mlops.data.publish import publish_partition
from mlops.simulation.scenario import Scenario

log = logging.getLogger(__name__)


def _label_inputs(table: pa.Table) -> LabelInputs:
    """The generator's numeric view of a transactions table (categoricals as codes)."""

    def codes(column: str) -> np.ndarray:
        return pc.index_in(table[column], value_set=pa.array(CATEGORIES[column])).to_numpy()

    def values(column: str) -> np.ndarray:
        return table[column].to_numpy()

    return LabelInputs(
        amount=values("amount"),
        merchant=codes("merchant_category"),
        country=codes("country"),
        channel=codes("channel"),
        card_age_days=values("card_age_days"),
        txn_count_1h=values("txn_count_1h"),
        txn_count_24h=values("txn_count_24h"),
        txn_amount_1h=values("txn_amount_1h"),
        txn_amount_24h=values("txn_amount_24h"),
        hour_of_day=values("hour_of_day"),
        device_risk_score=values("device_risk_score"),
    )


def composed_labels(day: dt.date, rows: int, seed: int, covariate: DriftSpec, label: DriftSpec) -> pa.Table:
    """Labels of a day with a covariate shift AND a label-side drift: the drifted concept on shifted inputs."""
    transactions, _ = generate_day(day, rows, seed, covariate)
    rng = np.random.default_rng([seed, day.toordinal(), 2])  # not one of the generator's own streams
    latent, uniform = rng.standard_normal(rows), rng.random(rows)
    is_fraud = generator._label(_label_inputs(transactions), latent, uniform, label)
    ids = transactions.column("transaction_id")
    return pa.Table.from_arrays([ids, pa.array(is_fraud, pa.int64())], schema=LABELS_SCHEMA)


class World:
    """One scenario's source of data, writing into one lake."""

    def __init__(self, scenario: Scenario, settings: Settings, lake: Lake) -> None:
        self.scenario, self.settings, self.lake = scenario, settings, lake
        self.delay_days = settings.dataset.label.delay_days

    def land(self, day: int) -> str | None:
        """Land ``raw/dt=D`` (with the day's covariate shift); corrupt it when the scenario says so."""
        scenario = self.scenario
        date = scenario.date(day)
        covariate, _ = scenario.drifts(day)
        # labels_until before the day: land_days lands the raw day only; labels come from deliver_labels.
        land_days(self.settings, date, 1, scenario.rows_per_day, scenario.seed, covariate,
                  labels_until=date - dt.timedelta(days=1))  # fmt: skip
        for event in scenario.events_on(day, "corrupt"):
            assert event.fault is not None
            fault = inject_fault(self.lake, date, event.fault, self.settings.dataset.id_column)
            return fault.description
        return None

    def labels_due(self, today: int) -> list[int]:
        """Days whose labels arrive on ``today`` (late ones included)."""
        first = -self.scenario.history_days
        return [d for d in range(first, today + 1) if d + self.scenario.labels_delay(d, self.delay_days) == today]

    def labels(self, day: int) -> pa.Table:
        """The day's labels, regenerated from the seed with the drifts in effect on that day."""
        scenario = self.scenario
        date = scenario.date(day)
        covariate, label = scenario.drifts(day)
        if covariate is not None and label is not None:
            return composed_labels(date, scenario.rows_per_day, scenario.seed, covariate, label)
        return generate_day(date, scenario.rows_per_day, scenario.seed, label or covariate)[1]

    def deliver_labels(self, day: int) -> pa.Table:
        """Publish ``labels/dt=D`` (staged, ``_SUCCESS`` last) and return it."""
        table = self.labels(day)
        lake = self.lake
        publish_partition(lake, lake.partition("labels", self.scenario.date(day)),
                          lambda staging: lake.write_parquet(table, f"{staging}/{DATA_FILE}"))  # fmt: skip
        return table
