"""Seeded, vectorised synthetic customer-churn snapshots: the demo's second table, of another shape.

One row per customer whose monthly renewal falls on day D (``raw/dt=D``): a string id (``customer_id``,
``CU20261101-000042``), a renewal time in milliseconds labelled with a zone (``Europe/Berlin``; the instant
is within the UTC day D), numeric columns (one with about 3 % nulls: a missing usage reading) and four
categoricals. The label is a string, ``churn_status`` = ``churned`` (the positive class) or ``stayed``, at
about 22 %; the model file says when it lands (``dataset.label.delay_days``).

Like :mod:`mlops.data.generator` it is pure and deterministic: a day's tables depend only on
``(day, rows, seed, drift)``, each column draws from its own child stream of
``np.random.default_rng([seed, day.toordinal(), SALT])``, and drift transforms those draws, so a
covariate shift of one column leaves every other column bit-for-bit identical, and concept/prior drift
leave all inputs identical.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlops.data import generator
from mlops.data.generator import categorical_codes

__all__ = [
    "CATEGORIES",
    "DEFAULT_DRIFT_FEATURES",
    "FEATURE_COLUMNS",
    "LABELS_SCHEMA",
    "MAX_ROWS_PER_DAY",
    "NEGATIVE",
    "POSITIVE",
    "SNAPSHOTS_SCHEMA",
    "DriftSpec",
    "churn_logit",
    "generate_day",
]


MAX_ROWS_PER_DAY = 1_000_000  # customer_id = CU<yyyymmdd>-<6-digit row index>
ZONE = "Europe/Berlin"
POSITIVE, NEGATIVE = "churned", "stayed"
#: Mixed into the seed so that the same (seed, day) draws other numbers than the card-transaction source.
_SALT = 2

CATEGORIES: dict[str, tuple[str, ...]] = {
    "plan": ("basic", "standard", "premium", "family"),
    "contract_type": ("monthly", "annual", "two_year"),
    "payment_method": ("card", "bank_transfer", "paypal", "invoice"),
    "region": ("north", "south", "east", "west", "central"),
}
_PROBS: dict[str, np.ndarray] = {
    "plan": np.array([0.35, 0.35, 0.18, 0.12]),
    "contract_type": np.array([0.55, 0.30, 0.15]),
    "payment_method": np.array([0.45, 0.25, 0.20, 0.10]),
    "region": np.array([0.22, 0.25, 0.18, 0.20, 0.15]),
}
_PLAN_PRICE = np.array([19.0, 39.0, 69.0, 89.0])  # monthly list price per plan (same order)
_TENURE_MEAN = np.array([14.0, 30.0, 48.0])  # months, per contract type (same order)
_MAX_TENURE = 240
_USAGE_NULL_FRACTION = 0.03

FEATURE_COLUMNS: tuple[str, ...] = (
    "plan",
    "contract_type",
    "payment_method",
    "region",
    "tenure_months",
    "monthly_charges",
    "support_calls_30d",
    "usage_hours_7d",
    "days_since_last_login",
    "late_payments_12m",
)
DEFAULT_DRIFT_FEATURES: tuple[str, ...] = ("monthly_charges", "support_calls_30d")

SNAPSHOTS_SCHEMA = pa.schema(
    [
        pa.field("customer_id", pa.string()),
        pa.field("renewal_at", pa.timestamp("ms", tz=ZONE)),
        pa.field("plan", pa.string()),
        pa.field("contract_type", pa.string()),
        pa.field("payment_method", pa.string()),
        pa.field("region", pa.string()),
        pa.field("tenure_months", pa.int64()),
        pa.field("monthly_charges", pa.float64()),
        pa.field("support_calls_30d", pa.int64()),
        pa.field("usage_hours_7d", pa.float64()),
        pa.field("days_since_last_login", pa.int64()),
        pa.field("late_payments_12m", pa.int64()),
    ]
)
LABELS_SCHEMA = pa.schema([pa.field("customer_id", pa.string()), pa.field("churn_status", pa.string())])

# -- the churn concept ---------------------------------------------------------------------------------------
# Intercepts calibrated numerically (900k rows, seeds 0-2) so each concept gives ~22 % churn. Difficulty,
# measured: XGBoost (depth 3, 60 rounds) trained on two 3,000-row days scores AUC-PR 0.53-0.57 (ROC AUC
# ~0.80, Brier ~0.133 against 0.17 for the base rate) on a later day, for seeds 0-2: a clear signal with
# headroom, at a base rate (the no-skill AUC-PR) of ~0.22.
_BASE_INTERCEPT = -1.55
_ALT_INTERCEPT = -3.67
_LATENT_SIGMA = 0.8
_PRIOR_ODDS_FACTOR = 2.0  # prior drift at magnitude 1 doubles the churn odds (measured: ~22 % -> ~31 %)


@dataclass(frozen=True)
class _Inputs:
    plan: np.ndarray  # codes into CATEGORIES[...]
    contract: np.ndarray
    payment: np.ndarray
    region: np.ndarray
    tenure_months: np.ndarray
    monthly_charges: np.ndarray
    support_calls_30d: np.ndarray
    usage_hours_7d: np.ndarray  # the true usage (the landed column misses some readings)
    days_since_last_login: np.ndarray
    late_payments_12m: np.ndarray


def churn_logit(x: _Inputs) -> np.ndarray:
    """The baseline churn concept (without latent noise): month-to-month customers early in their tenure,
    calling support, not using the product and paying more than their plan's list price leave."""
    monthly = x.contract == 0
    calls = x.support_calls_30d.astype(np.float64)
    overpay = x.monthly_charges / _PLAN_PRICE[x.plan] - 1.0
    return (
        _BASE_INTERCEPT
        + 1.4 * monthly
        - 1.0 * (x.contract == 2)
        - 0.45 * np.log1p(x.tenure_months)
        + 0.45 * calls
        + 0.8 * (monthly & (calls >= 2))
        - 0.09 * x.usage_hours_7d
        + 0.04 * x.days_since_last_login
        + 2.5 * overpay
        + 0.5 * (x.payment == 3)
        + 0.35 * x.late_payments_12m
    )


def _drifted_churn_logit(x: _Inputs) -> np.ndarray:
    """The concept after concept drift: a competitor's launch in the south and east takes price-sensitive
    customers, whatever their usage or support history."""
    return (
        _ALT_INTERCEPT
        + 0.035 * x.monthly_charges
        + 1.6 * ((x.region == 1) | (x.region == 2))
        + 0.8 * (x.contract == 0)
        - 0.3 * np.log1p(x.tenure_months)
    )


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class DriftSpec(generator.DriftSpec):
    """Drift applied to every generated day on or after ``start``; the same kinds as the card source's.

    - covariate: the named ``features`` (default: monthly_charges and support_calls_30d) change distribution
      while P(churn|x) stays :func:`churn_logit`. At magnitude m: monthly_charges x e^(0.25m) (a price rise);
      support_calls_30d rate x e^(0.7m); usage_hours_7d x e^(-0.5m); days_since_last_login x e^(0.6m);
      tenure_months x e^(-0.6m); late_payments_12m rate x e^(0.7m); categoricals flattened towards uniform
      (p -> p^(1/(1+m))).
    - concept: inputs identical; P(churn) = (1-w) p_base + w p_drifted with w = min(m, 1).
    - prior: inputs identical; the churn logit moves by m * ln(2).
    """

    feature_columns = FEATURE_COLUMNS
    default_covariate_features = DEFAULT_DRIFT_FEATURES


# -- generation ------------------------------------------------------------------------------------------------
_DICTIONARIES = {name: pa.array(values, pa.string()) for name, values in CATEGORIES.items()}
_LABEL_VALUES = pa.array([NEGATIVE, POSITIVE], pa.string())


def _strings(codes: np.ndarray, values: pa.Array) -> pa.Array:
    return pc.take(values, pa.array(codes.astype(np.int64)))


def _customer_ids(day: dt.date, n: int) -> pa.Array:
    """``CU<yyyymmdd>-<row>``, unique across days, built without a Python loop."""
    index = pc.utf8_lpad(pc.cast(pa.array(np.arange(n, dtype=np.int64)), pa.string()), width=6, padding="0")
    return pc.binary_join_element_wise(f"CU{day:%Y%m%d}-", index, "")


def _validate(day: dt.date, rows: int, seed: int, drift: DriftSpec | None) -> None:
    if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
        raise ValueError(f"day must be a datetime.date (not a datetime), got {day!r}")
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or not 0 <= rows < MAX_ROWS_PER_DAY:
        raise ValueError(f"rows must be an int in [0, {MAX_ROWS_PER_DAY}), got {rows!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if drift is not None and not isinstance(drift, DriftSpec):
        raise ValueError(f"drift must be a mlops.data.churn.DriftSpec or None, got {drift!r}")


def generate_day(day: dt.date, rows: int, seed: int, drift: DriftSpec | None = None) -> tuple[pa.Table, pa.Table]:
    """Return (snapshots, labels) for one day; deterministic in (day, rows, seed, drift)."""
    _validate(day, rows, seed, drift)
    n = int(rows)
    active = drift if drift is not None and day >= drift.start else None
    shift = active.covariate_shifts() if active is not None else {}

    def m(feature: str) -> float:
        return shift.get(feature, 0.0)

    streams = np.random.default_rng([int(seed), day.toordinal(), _SALT]).spawn(14)
    (r_time, r_plan, r_contract, r_payment, r_region, r_tenure, r_price, r_calls, r_usage, r_missing, r_login,
     r_late, r_latent, r_label) = streams  # fmt: skip

    day_start_ms = (day - dt.date(1970, 1, 1)).days * 86_400_000
    renewal_ms = np.sort(day_start_ms + r_time.integers(0, 86_400_000, n, dtype=np.int64))

    codes = {
        name: categorical_codes(stream.random(n), _PROBS[name], m(name))
        for name, stream in (
            ("plan", r_plan),
            ("contract_type", r_contract),
            ("payment_method", r_payment),
            ("region", r_region),
        )  # fmt: skip
    }
    plan, contract, payment = codes["plan"], codes["contract_type"], codes["payment_method"]

    tenure_scale = _TENURE_MEAN[contract] * math.exp(-0.6 * m("tenure_months"))
    tenure = np.minimum(np.floor(r_tenure.standard_exponential(n) * tenure_scale), _MAX_TENURE).astype(np.int64)
    charges = _PLAN_PRICE[plan] * np.exp(0.12 * r_price.standard_normal(n) + 0.25 * m("monthly_charges"))
    charges = np.round(charges, 2)
    calls = r_calls.poisson(0.8 * math.exp(0.7 * m("support_calls_30d")), n).astype(np.int64)
    usage = np.round(r_usage.gamma(2.0, 4.0, n) * math.exp(-0.5 * m("usage_hours_7d")), 1)
    missing = r_missing.random(n) < _USAGE_NULL_FRACTION
    login_scale = (2.0 + 30.0 / (1.0 + usage)) * math.exp(0.6 * m("days_since_last_login"))
    login = np.floor(r_login.standard_exponential(n) * login_scale).astype(np.int64)
    late_rate = (0.25 + 0.6 * (payment == 3)) * math.exp(0.7 * m("late_payments_12m"))
    late = np.minimum(r_late.poisson(late_rate, n), 12).astype(np.int64)  # at most one per monthly bill

    x = _Inputs(plan, contract, payment, codes["region"], tenure, charges, calls, usage, login, late)
    churned = _label(x, r_latent.standard_normal(n), r_label.random(n), active)

    ids = _customer_ids(day, n)
    snapshots = pa.Table.from_arrays(
        [
            ids,
            pa.array(renewal_ms, pa.int64()).view(pa.timestamp("ms", tz=ZONE)),
            *(_strings(codes[name], _DICTIONARIES[name]) for name in CATEGORIES),
            pa.array(tenure, pa.int64()),
            pa.array(charges, pa.float64()),
            pa.array(calls, pa.int64()),
            pa.array(usage, pa.float64(), mask=missing),
            pa.array(login, pa.int64()),
            pa.array(late, pa.int64()),
        ],
        schema=SNAPSHOTS_SCHEMA,
    )
    labels = pa.Table.from_arrays([ids, _strings(churned.astype(np.int64), _LABEL_VALUES)], schema=LABELS_SCHEMA)
    return snapshots, labels


def _label(x: _Inputs, latent: np.ndarray, u: np.ndarray, drift: DriftSpec | None) -> np.ndarray:
    latent = _LATENT_SIGMA * latent
    prior = drift.magnitude * math.log(_PRIOR_ODDS_FACTOR) if drift is not None and drift.kind == "prior" else 0.0
    p = _sigmoid(churn_logit(x) + latent + prior)
    if drift is not None and drift.kind == "concept" and drift.magnitude > 0:
        w = min(drift.magnitude, 1.0)
        p = (1.0 - w) * p + w * _sigmoid(_drifted_churn_logit(x) + latent)
    return u < p
