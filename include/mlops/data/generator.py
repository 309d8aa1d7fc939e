"""Seeded, vectorised synthetic credit-card transactions with a known fraud concept.

Why synthetic: the platform needs a data source whose ground truth (the label function) and drift
are known exactly, so training, promotion gates and drift monitors can be tested against the truth.

Everything here is pure (no I/O) and deterministic: a day's tables depend only on
``(day, rows, seed, drift)``. Each feature draws from its own child stream of
``np.random.default_rng([seed, day.toordinal()])`` and drift is applied as a transform of those
draws, so a drift on one feature leaves every other column bit-for-bit identical, and concept/prior
drift leave all inputs identical.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "CATEGORIES",
    "FEATURE_COLUMNS",
    "LABELS_SCHEMA",
    "MAX_ROWS_PER_DAY",
    "TRANSACTIONS_SCHEMA",
    "DriftKind",
    "DriftSpec",
    "LabelInputs",
    "drifted_fraud_logit",
    "fraud_logit",
    "generate_day",
]

DriftKind = Literal["covariate", "concept", "prior"]
_DRIFT_KINDS: tuple[str, ...] = get_args(DriftKind)

MAX_ROWS_PER_DAY = 10_000_000  # transaction_id = yyyymmdd * 10M + row index must stay unique
_US_PER_HOUR = 3_600_000_000
_US_PER_DAY = 24 * _US_PER_HOUR

# --- Marginal distributions (probabilities sum to 1; deliberately non-uniform) -------------------

_MERCHANT_P: dict[str, float] = {
    "grocery": 0.22,
    "restaurants": 0.16,
    "fuel": 0.10,
    "fashion": 0.09,
    "electronics": 0.06,
    "travel": 0.05,
    "digital_goods": 0.08,
    "gaming": 0.04,
    "health": 0.08,
    "utilities": 0.12,
}
_COUNTRY_P: dict[str, float] = {
    "US": 0.45,
    "GB": 0.15,
    "DE": 0.10,
    "FR": 0.08,
    "CA": 0.07,
    "IN": 0.06,
    "BR": 0.05,
    "NG": 0.04,
}
_CHANNELS: tuple[str, ...] = ("pos", "online", "mobile", "atm")
# P(channel | merchant_category): rows follow _MERCHANT_P's order, columns follow _CHANNELS.
_CHANNEL_GIVEN_MERCHANT = np.array(
    [
        [0.80, 0.07, 0.10, 0.03],  # grocery
        [0.75, 0.05, 0.18, 0.02],  # restaurants
        [0.88, 0.02, 0.05, 0.05],  # fuel
        [0.45, 0.35, 0.18, 0.02],  # fashion
        [0.40, 0.40, 0.18, 0.02],  # electronics
        [0.15, 0.55, 0.28, 0.02],  # travel
        [0.02, 0.58, 0.39, 0.01],  # digital_goods
        [0.05, 0.55, 0.38, 0.02],  # gaming
        [0.80, 0.10, 0.08, 0.02],  # health
        [0.25, 0.45, 0.25, 0.05],  # utilities
    ]
)
# Log-dollar mean of the amount per merchant category (same order); sigma is shared.
_AMOUNT_LOG_MU = np.array([3.6, 3.3, 3.7, 4.2, 5.2, 5.6, 2.7, 3.0, 4.0, 4.5])
_AMOUNT_LOG_SIGMA = 0.9
# Relative transaction volume per hour of day (UTC): quiet nights, busy late mornings and evenings.
_HOUR_WEIGHTS = np.array(
    [1.2, 0.8, 0.6, 0.5, 0.5, 0.7, 1.5, 2.8, 4.0, 4.8, 5.2, 5.6]
    + [6.0, 5.8, 5.4, 5.2, 5.4, 5.9, 6.2, 5.8, 4.8, 3.6, 2.6, 1.8]
)
_CARD_AGE_MEAN_DAYS = 900.0

CATEGORIES: dict[str, tuple[str, ...]] = {
    "merchant_category": tuple(_MERCHANT_P),
    "country": tuple(_COUNTRY_P),
    "channel": _CHANNELS,
}

FEATURE_COLUMNS: tuple[str, ...] = (
    "amount",
    "merchant_category",
    "country",
    "channel",
    "card_age_days",
    "txn_count_1h",
    "txn_count_24h",
    "txn_amount_1h",
    "txn_amount_24h",
    "hour_of_day",
    "device_risk_score",
    "noise_1",
    "noise_2",
    "noise_3",
    "noise_4",
)
_DEFAULT_COVARIATE_FEATURES: tuple[str, ...] = ("amount", "device_risk_score")

# Fields keep Arrow's default nullable=True so the schema equals what readers infer from files;
# the generator never emits a null.
TRANSACTIONS_SCHEMA = pa.schema(
    [
        pa.field("transaction_id", pa.int64()),
        pa.field("event_time", pa.timestamp("us", tz="UTC")),
        pa.field("amount", pa.float64()),
        pa.field("merchant_category", pa.string()),
        pa.field("country", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("card_age_days", pa.int64()),
        pa.field("txn_count_1h", pa.int64()),
        pa.field("txn_count_24h", pa.int64()),
        pa.field("txn_amount_1h", pa.float64()),
        pa.field("txn_amount_24h", pa.float64()),
        pa.field("hour_of_day", pa.int64()),
        pa.field("device_risk_score", pa.float64()),
        pa.field("noise_1", pa.float64()),
        pa.field("noise_2", pa.float64()),
        pa.field("noise_3", pa.float64()),
        pa.field("noise_4", pa.float64()),
    ]
)
LABELS_SCHEMA = pa.schema(
    [
        pa.field("transaction_id", pa.int64()),
        pa.field("is_fraud", pa.int64()),
    ]
)

# --- The fraud concept ----------------------------------------------------------------------------

# Intercepts calibrated numerically (3M rows) so each concept gives ~1 % fraud.
# Difficulty, measured: default XGBoost (hist, depth 6, 100 rounds, native categoricals) trained on
# one 200k-row day scores AUC-PR 0.40-0.43 (ROC AUC ~0.95) on the next day, for seeds 0-2; ranking by
# the true logit without the latent term gets ~0.59 -- a meaningful signal with headroom, not solvable.
_BASE_INTERCEPT = -12.23
_ALT_INTERCEPT = -21.13
# Std-dev of unobserved per-transaction risk added to the logit: what keeps the task imperfect.
_LATENT_SIGMA = 1.0
# Prior drift at magnitude 1 multiplies the fraud odds by this; measured: the rate goes ~1.0 % -> ~2.0 %.
_PRIOR_ODDS_FACTOR = 3.8

_ONLINE_LIKE = np.array([c in ("online", "mobile") for c in _CHANNELS])
_RISKY_MERCHANT = np.array([m in ("digital_goods", "gaming", "electronics") for m in _MERCHANT_P])
_RISKY_COUNTRY = np.array([c in ("NG", "BR", "IN") for c in _COUNTRY_P])
_ALT_MERCHANT = np.array([m in ("travel", "fashion", "fuel") for m in _MERCHANT_P])
_ALT_COUNTRY = np.array([c in ("GB", "DE", "FR") for c in _COUNTRY_P])


@dataclass(frozen=True)
class LabelInputs:
    """Numeric view of one day's inputs, used by the label functions (categoricals as codes)."""

    amount: np.ndarray
    merchant: np.ndarray  # codes into CATEGORIES["merchant_category"]
    country: np.ndarray  # codes into CATEGORIES["country"]
    channel: np.ndarray  # codes into CATEGORIES["channel"]
    card_age_days: np.ndarray
    txn_count_1h: np.ndarray
    txn_count_24h: np.ndarray
    txn_amount_1h: np.ndarray
    txn_amount_24h: np.ndarray
    hour_of_day: np.ndarray
    device_risk_score: np.ndarray


def fraud_logit(x: LabelInputs) -> np.ndarray:
    """The baseline fraud concept f(x) (without latent noise); P(fraud) = sigmoid(f(x) + noise).

    Card-not-present fraud: risky devices buying online, on risky merchants, at night, on new
    cards, spending far more than the customer's recent velocity. Several terms are interactions,
    so a linear model on raw features can't recover it fully.
    """
    risk = x.device_risk_score
    online = _ONLINE_LIKE[x.channel]
    night = x.hour_of_day < 6
    new_card = x.card_age_days < 30
    # Spend relative to the last 24h: ~0 for a usual purchase, large for a sudden big one.
    spend_jump = np.log1p(x.amount / (x.txn_amount_24h + 30.0))
    return (
        _BASE_INTERCEPT
        + 10.0 * risk * online
        + 4.5 * ((risk > 0.5) & _RISKY_MERCHANT[x.merchant])
        + 2.75 * spend_jump
        + 1.75 * night
        + 2.5 * (night & (x.card_age_days < 180))
        + 3.25 * new_card
        + 2.0 * _RISKY_COUNTRY[x.country]
        + 1.5 * (x.txn_count_1h >= 3)
    )


def drifted_fraud_logit(x: LabelInputs) -> np.ndarray:
    """The concept after concept drift: a different fraud pattern, at a similar overall rate.

    Card-present / account-takeover fraud: bursts of in-person or ATM spend on old cards in
    western-European countries during the day, largely independent of device risk.
    """
    present = ~_ONLINE_LIKE[x.channel]
    burst = np.log1p(x.txn_count_24h.astype(np.float64))
    daytime = (x.hour_of_day >= 9) & (x.hour_of_day < 17)
    return (
        _ALT_INTERCEPT
        + 3.75 * present * _ALT_MERCHANT[x.merchant]
        + 3.0 * _ALT_COUNTRY[x.country]
        + 3.25 * burst
        + 2.5 * (x.card_age_days > 1500)
        + 2.0 * (daytime & present)
        + 1.4 * np.log(x.amount)
        - 2.5 * x.device_risk_score
    )


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function via tanh: no overflow warnings for extreme logits."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


# --- Drift specification ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftSpec:
    """Drift applied to every generated day on or after ``start`` (days before it are untouched).

    - covariate: the named ``features`` (default: amount and device_risk_score) change
      distribution while P(y|x) stays ``fraud_logit``; the fraud rate still moves because P(x)
      does. Per feature, at magnitude m: amount x e^(0.4m); device_risk_score 1-(1-s)e^(-0.15m);
      card_age_days x e^(-0.8m); txn_count_* rate x e^(0.7m) (1h also raises 24h, which includes
      it); txn_amount_* x e^(0.5m); hour_of_day, merchant_category, country, channel: frequencies
      p -> p^(1/(1+m)), i.e. flattened towards uniform; noise_1/2/4 shifted, noise_3 rescaled.
    - concept: inputs bit-identical to no drift; P(fraud) = (1-w) p_base + w p_drifted with
      w = min(m, 1), so the overall rate stays ~1 % (``drifted_fraud_logit`` is the new concept).
    - prior: inputs bit-identical; the fraud logit moves by m * ln(3.8), ~2x the rate at m = 1.
    ``features`` only matters for covariate drift, but names are validated for every kind. Another synthetic
    source subclasses it with its own ``feature_columns`` and ``default_covariate_features``.
    """

    feature_columns: ClassVar[tuple[str, ...]] = FEATURE_COLUMNS
    default_covariate_features: ClassVar[tuple[str, ...]] = _DEFAULT_COVARIATE_FEATURES

    start: dt.date
    kind: DriftKind
    features: tuple[str, ...] = ()
    magnitude: float = 1.0

    def __post_init__(self) -> None:
        """Fail at construction so a bad config is reported where it is written."""
        if not isinstance(self.start, dt.date) or isinstance(self.start, dt.datetime):
            raise ValueError(f"DriftSpec.start must be a datetime.date (not a datetime), got {self.start!r}")
        if self.kind not in _DRIFT_KINDS:
            raise ValueError(f"unknown drift kind {self.kind!r}; expected one of {_DRIFT_KINDS}")
        if isinstance(self.features, str):
            raise ValueError(f"DriftSpec.features must be a tuple of names, got the string {self.features!r}")
        features = tuple(self.features)
        unknown = [f for f in features if f not in self.feature_columns]
        if unknown:
            raise ValueError(f"unknown drift feature(s) {unknown}; expected names from {self.feature_columns}")
        object.__setattr__(self, "features", features)
        magnitude = float(self.magnitude)
        if not math.isfinite(magnitude) or magnitude < 0:
            raise ValueError(f"DriftSpec.magnitude must be a finite number >= 0, got {self.magnitude!r}")
        object.__setattr__(self, "magnitude", magnitude)

    def covariate_shifts(self) -> dict[str, float]:
        """Per-feature magnitude of covariate drift (empty for other kinds)."""
        if self.kind != "covariate":
            return {}
        return {f: self.magnitude for f in (self.features or self.default_covariate_features)}


# --- Generation ------------------------------------------------------------------------------------


def categorical_codes(u: np.ndarray, probs: np.ndarray, flatten: float = 0.0) -> np.ndarray:
    """Inverse-CDF sample codes from uniforms; ``flatten`` > 0 pulls frequencies towards uniform."""
    p = probs ** (1.0 / (1.0 + flatten))
    cdf = np.cumsum(p / p.sum())
    codes = np.searchsorted(cdf, u, side="right")
    return np.minimum(codes, len(probs) - 1)  # guards u just below 1 against cdf[-1] rounding


def _int64(values: np.ndarray) -> pa.Array:
    """Zero-copy int64 Arrow array (no nulls).

    Why not ``pa.array``: it imports pandas on first use (~1.5 s per process) and copies.
    """
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def _float64(values: np.ndarray) -> pa.Array:
    """Zero-copy float64 Arrow array (no nulls), for the same reason as ``_int64``."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    return pa.Array.from_buffers(pa.float64(), len(values), [None, pa.py_buffer(values)])


def _string_dictionary(values: tuple[str, ...]) -> pa.Array:
    """A small string array built from raw buffers (again avoiding ``pa.array``)."""
    encoded = [v.encode() for v in values]
    offsets = np.cumsum([0, *(len(e) for e in encoded)]).astype(np.int32)
    return pa.Array.from_buffers(
        pa.string(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    )


_STRING_DICTIONARIES: dict[str, pa.Array] = {name: _string_dictionary(vals) for name, vals in CATEGORIES.items()}


def _string_column(codes: np.ndarray, column: str) -> pa.Array:
    """Plain ``pa.string()`` column from small integer codes (take is far faster than object arrays)."""
    return pc.take(_STRING_DICTIONARIES[column], _int64(codes))


def _validate(day: dt.date, rows: int, seed: int, drift: DriftSpec | None) -> None:
    if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
        # A datetime's calendar day depends on its time zone: make the caller choose (.date()).
        raise ValueError(f"day must be a datetime.date (not a datetime), got {day!r}")
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer):
        raise ValueError(f"rows must be an int, got {rows!r}")
    if rows < 0 or rows >= MAX_ROWS_PER_DAY:
        raise ValueError(f"rows must be in [0, {MAX_ROWS_PER_DAY}), got {rows}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if drift is not None and not isinstance(drift, DriftSpec):
        raise ValueError(f"drift must be a DriftSpec or None, got {drift!r}")


def generate_day(day: dt.date, rows: int, seed: int, drift: DriftSpec | None = None) -> tuple[pa.Table, pa.Table]:
    """Return (transactions, labels) for one day.

    Deterministic in (day, rows, seed, drift) and independent of any other day, so backfills and
    re-runs reproduce the lake exactly. ``drift`` only takes effect if ``day >= drift.start``.
    """
    _validate(day, rows, seed, drift)
    rows = int(rows)
    active = drift if drift is not None and day >= drift.start else None
    shift = active.covariate_shifts() if active is not None else {}

    def m(feature: str) -> float:
        return shift.get(feature, 0.0)

    # One independent child stream per feature: drift on one feature never perturbs another.
    streams = np.random.default_rng([int(seed), day.toordinal()]).spawn(14)
    (r_time, r_micro, r_merchant, r_country, r_channel, r_amount, r_age, r_vel, r_vel_1h, r_vel_24h,
     r_risk, r_noise, r_latent, r_label) = streams  # fmt: skip
    n = rows

    # Event time: hour from a diurnal profile, then uniform within the hour; sorted ascending.
    hour = categorical_codes(r_time.random(n), _HOUR_WEIGHTS, flatten=m("hour_of_day"))
    offsets = hour.astype(np.int64) * _US_PER_HOUR + r_micro.integers(0, _US_PER_HOUR, n, dtype=np.int64)
    offsets.sort()
    hour_of_day = offsets // _US_PER_HOUR
    day_start_us = (day - dt.date(1970, 1, 1)).days * _US_PER_DAY

    merchant = categorical_codes(r_merchant.random(n), np.array(list(_MERCHANT_P.values())), m("merchant_category"))
    country = categorical_codes(r_country.random(n), np.array(list(_COUNTRY_P.values())), m("country"))
    # Channel depends on the merchant (digital goods are online, fuel is in person).
    channel_cdf = np.cumsum(_CHANNEL_GIVEN_MERCHANT ** (1.0 / (1.0 + m("channel"))), axis=1)
    channel_cdf /= channel_cdf[:, -1:]
    u_channel = r_channel.random(n)
    channel = (u_channel[:, None] >= channel_cdf[merchant, :-1]).sum(axis=1)

    log_amount = _AMOUNT_LOG_MU[merchant] + 0.4 * m("amount") + _AMOUNT_LOG_SIGMA * r_amount.standard_normal(n)
    amount = np.maximum(np.round(np.exp(log_amount), 2), 0.01)

    age_scale = _CARD_AGE_MEAN_DAYS * math.exp(-0.8 * m("card_age_days"))
    card_age_days = np.floor(r_age.standard_exponential(n) * age_scale).astype(np.int64)

    # Velocity of the card's customer over the previous 1h / 24h (excluding this transaction).
    activity = r_vel.gamma(0.8, 0.4, n)  # customer's hourly rate, heterogeneous across customers
    typical_spend = np.exp(3.6 + 0.7 * r_vel.standard_normal(n))
    count_1h = r_vel_1h.poisson(activity * math.exp(0.7 * m("txn_count_1h")))
    count_24h = count_1h + r_vel_24h.poisson(activity * 6.0 * math.exp(0.7 * m("txn_count_24h")))
    spend_1h = count_1h * typical_spend * math.exp(0.5 * m("txn_amount_1h"))
    spend_rest = (count_24h - count_1h) * typical_spend * math.exp(0.5 * m("txn_amount_24h"))
    txn_amount_1h = np.round(spend_1h, 2)
    txn_amount_24h = np.round(spend_1h + spend_rest, 2)
    txn_amount_24h = np.maximum(txn_amount_24h, txn_amount_1h)  # rounding must not break 24h >= 1h

    risk = r_risk.beta(1.2, 6.0, n)
    device_risk_score = 1.0 - (1.0 - risk) * math.exp(-0.15 * m("device_risk_score"))

    noise = [
        r_noise.standard_normal(n) + 0.5 * m("noise_1"),
        r_noise.random(n) + 0.25 * m("noise_2"),
        r_noise.standard_normal(n) * math.exp(0.5 * m("noise_3")),
        r_noise.standard_exponential(n) + 0.5 * m("noise_4"),
    ]

    x = LabelInputs(
        amount=amount,
        merchant=merchant,
        country=country,
        channel=channel,
        card_age_days=card_age_days,
        txn_count_1h=count_1h,
        txn_count_24h=count_24h,
        txn_amount_1h=txn_amount_1h,
        txn_amount_24h=txn_amount_24h,
        hour_of_day=hour_of_day,
        device_risk_score=device_risk_score,
    )
    is_fraud = _label(x, r_latent.standard_normal(n), r_label.random(n), active)

    ids = int(day.strftime("%Y%m%d")) * MAX_ROWS_PER_DAY + np.arange(n, dtype=np.int64)
    id_array = _int64(ids)
    transactions = pa.Table.from_arrays(
        [
            id_array,
            _int64(day_start_us + offsets).view(pa.timestamp("us", tz="UTC")),
            _float64(amount),
            _string_column(merchant, "merchant_category"),
            _string_column(country, "country"),
            _string_column(channel, "channel"),
            _int64(card_age_days),
            _int64(count_1h),
            _int64(count_24h),
            _float64(txn_amount_1h),
            _float64(txn_amount_24h),
            _int64(hour_of_day),
            _float64(device_risk_score),
            *(_float64(col) for col in noise),
        ],
        schema=TRANSACTIONS_SCHEMA,
    )
    labels = pa.Table.from_arrays([id_array, _int64(is_fraud)], schema=LABELS_SCHEMA)
    return transactions, labels


def _label(x: LabelInputs, latent: np.ndarray, u: np.ndarray, drift: DriftSpec | None) -> np.ndarray:
    """Draw is_fraud ~ Bernoulli(p); concept drift mixes in the drifted concept's probability."""
    latent = _LATENT_SIGMA * latent
    p = _sigmoid(fraud_logit(x) + latent + _prior_shift(drift))
    if drift is not None and drift.kind == "concept" and drift.magnitude > 0:
        # Mixing probabilities (not logits) keeps the overall rate ~1 % at every magnitude.
        w = min(drift.magnitude, 1.0)
        p = (1.0 - w) * p + w * _sigmoid(drifted_fraud_logit(x) + latent)
    return (u < p).astype(np.int64)


def _prior_shift(drift: DriftSpec | None) -> float:
    if drift is None or drift.kind != "prior":
        return 0.0
    return drift.magnitude * math.log(_PRIOR_ODDS_FACTOR)
