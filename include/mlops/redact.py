"""Secrets never leave their place: one redaction for artifacts, tags, log lines, messages and pod arguments.

A value is secret-bearing by the rules of :mod:`mlops.secret_rules` (the GPU pod refuses the same
things): a URL with an embedded password (``redis://:pw@host`` too), an AWS access key id, a mapping key that
looks like a secret (``*_PASSWORD``, ``*_TOKEN``, ``*KEY``...). Text is also cleaned of secrets passed as
parameters (``?token=``, ``&access_token=``, ``api_key=``, ``sig=``, ``X-Amz-Signature=``, ``password=``) and
of Slack webhook paths (:mod:`mlops.secret_rules`). On top of those rules, the *values* of secret-looking
environment variables of this process (``AWS_SECRET_ACCESS_KEY``, ``MLFLOW_TRACKING_PASSWORD``...) are
replaced wherever they appear, so an error message that echoes a credential is cleaned as well.

Redaction keeps what is useful to a reader: ``postgresql://mlops:***@db:5432/ledger`` still says which
database. Imported at DAG-parse time: the standard library, ``mlops.config`` (the settings fields the key rule
exempts) and ``mlops.secret_rules`` only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mlops import secret_rules
from mlops.config import ENV_PREFIX, Settings
from mlops.secret_rules import MASK, MIN_SECRET_LENGTH, mask, secret_values

__all__ = ["MASK", "MIN_SECRET_LENGTH", "env_secrets", "redact", "redact_settings", "redact_text"]


def looks_like_secret_key(name: str) -> bool:
    """The key rule of :mod:`mlops.secret_rules` with :class:`Settings`' own ``MLOPS__`` fields exempt."""
    return secret_rules.looks_like_secret_key(name, Settings, ENV_PREFIX)


def env_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of this process's secret-looking environment variables, longest first."""
    return secret_values(env, is_secret=looks_like_secret_key)


def redact_text(text: str, env: Mapping[str, str] | None = None) -> str:
    """``text`` with URL passwords, secret parameters, Slack webhook paths, AWS access key ids and secret env values
    replaced by ``***``."""
    return mask(text, env_secrets(env)) if text else text


def redact(value: Any, env: Mapping[str, str] | None = None, *, keys: bool = True) -> Any:
    """A copy of ``value`` (JSON-like: mappings, lists, strings, numbers) with every secret masked.

    Strings go through :func:`redact_text`; with ``keys``, the value of a mapping key that looks like a
    secret is replaced whole.
    """
    if isinstance(value, str):
        return redact_text(value, env)
    if isinstance(value, Mapping):
        return {
            key: MASK if keys and isinstance(key, str) and looks_like_secret_key(key) else redact(item, env, keys=keys)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item, env, keys=keys) for item in value]
    return value


def redact_settings(settings: Settings) -> dict[str, Any]:
    """The settings as JSON with secret-bearing values masked: what the ``config.json`` artifact holds.

    Only the value rules apply: :class:`~mlops.config.Settings` holds no secret fields by design (names
    such as ``kubernetes.credentials_secret`` are the *name* of a Secret), only URIs that may embed one.
    """
    return redact(settings.model_dump(mode="json"), keys=False)


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the final message (arguments included) of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:  # the formatter reuses exc_text: mask the traceback once
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Put :class:`RedactingFilter` on every handler of ``logger`` (the root logger): libraries' lines too."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(existing, RedactingFilter) for existing in handler.filters):
            handler.addFilter(RedactingFilter())
