"""The two kinds of failure every step raises, so the orchestrator knows whether a retry can help.

* :class:`InputError`: the request or the data is wrong (contract breach, no champion, bad conf, no
  training data, an unknown version). Retrying cannot fix it: fail fast, one clear line, no retries.
* :class:`InfrastructureError`: a service or the disk failed (I/O, network, database). Retry with backoff;
  never quarantine data or change a model because of it.

Exceptions of neither kind (bugs, and the libraries' own errors) keep the orchestrator's default
(retries with backoff). ``mlops.airflow`` maps the two kinds to Airflow behaviour; nothing else here
knows about Airflow.
"""

from __future__ import annotations


class MlopsError(Exception):
    """Base of every error the package raises on purpose."""


class InputError(MlopsError, ValueError):
    """Bad input (data, conf, request): retrying the same input gives the same failure."""


class Quarantined(InputError):
    """Bad data that was moved to quarantine with its reason (a broken contract): alerts say QUARANTINED."""


class InfrastructureError(MlopsError, RuntimeError):
    """A service, the network or the disk failed: the same request may succeed on a retry."""
