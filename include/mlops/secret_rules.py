"""What a secret looks like: the key and value rules that redaction, the pod checks and config errors share.

A bottom-layer module (no import from :mod:`mlops`), so that :mod:`mlops.config` can mask a refused value in
its error message and :mod:`mlops.redact` and :mod:`mlops.training.pod_spec` can apply the same rules without
importing each other in a circle. The key rule's config exemption walks the settings model its caller passes
(:class:`mlops.config.Settings`): this module cannot import it, config imports this one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
#: Environment values shorter than this are not masked by value (``"testing"`` would mask every test name).
MIN_SECRET_LENGTH = 8
#: A word of an env key (split on ``_``) that contains one of these marks a secret ...
SECRET_WORD_PARTS = ("SECRET", "PASSWORD", "PASSWD", "TOKEN", "CREDENTIAL", "PRIVATE")
#: ... as does a word that ends with ``KEY`` (``KEY``, ``APIKEY``, ``ACCESSKEY``). Deliberately broad: a harmless
#: name caught by it (``HOTKEY``) is renamed; a secret let through would end up in the pod spec.
SECRET_WORD_SUFFIX = "KEY"
#: ``scheme://user:password@``, also with no user (``redis://:password@host``).
URL_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@")
AWS_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
#: A secret passed as a parameter, in a query string or a log line: ``?token=``, ``&access_token=``, ``api_key=``,
#: ``sig=``, ``signature=``, ``X-Amz-Signature=``, ``X-Amz-Security-Token=``, ``password=``, ``client_secret=``.
#: The name may carry words before it (``access_``, ``X-Amz-``) but must start a word (``mytoken=`` is not one).
SECRET_PARAMETER = re.compile(
    r"(?i)(?<![\w-])((?:[a-z0-9]+[_-])*(?:token|secret|password|passwd|api[_-]?key|sig|signature)=)[^\s&#'\"<>]+"
)
#: A Slack webhook URL is its own credential: anyone holding the path may post to the channel.
SLACK_WEBHOOK = re.compile(r"(hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9_/-]+")


def has_secret_word(name: str) -> bool:
    """The word rule alone: a word of ``name`` (split on ``_``, any case) contains a secret mark or ends with KEY."""
    words = [word for word in name.upper().split("_") if word]
    return any(any(part in word for part in SECRET_WORD_PARTS) or word.endswith(SECRET_WORD_SUFFIX) for word in words)


def is_config_key(name: str, settings_model: type[Any], prefix: str) -> bool:
    """True when ``name`` is ``<prefix><SECTION>__<FIELD>...`` naming a real field of ``settings_model``.

    The path is walked through the pydantic models; once it reaches a field that is not a model (a dict such
    as ``model.params``, a list, a scalar) the rest of the path is that field's value and is accepted.
    """
    if not name.startswith(prefix):
        return False
    keys = [part.lower() for part in name[len(prefix) :].split("__") if part]
    model: type[Any] | None = settings_model
    for key in keys:
        if model is None:
            return True
        field = model.model_fields.get(key)
        if field is None:
            return False
        annotation = field.annotation
        model = annotation if isinstance(annotation, type) and hasattr(annotation, "model_fields") else None
    return bool(keys)


def looks_like_secret_key(name: str, settings_model: type[Any], prefix: str) -> bool:
    """The key rule: a word of ``name`` (split on ``_``, case-insensitive) contains SECRET, PASSWORD, PASSWD,
    TOKEN, CREDENTIAL or PRIVATE, or ends with KEY -- unless ``name`` is a ``<prefix>...`` key that names a
    real field of ``settings_model`` (:func:`is_config_key`): the settings hold no secrets by design, so
    ``MLOPS__KUBERNETES__CREDENTIALS_SECRET`` (the *name* of a Secret) is config, not a secret.

    ``AWS_SECRET_ACCESS_KEY``, ``MLFLOW_TRACKING_TOKEN``, ``DB_PASSWORD``, ``OPENAI_API_KEY``, ``APIKEY`` and
    ``MLOPS__STORAGE__SECRET_KEY`` (no such field) are secrets; ``MLFLOW_TRACKING_URI``, ``MLOPS_HOME``,
    ``AWS_DEFAULT_REGION`` and ``MLOPS__DATASET__ID_COLUMN`` are not.
    """
    return not is_config_key(name, settings_model, prefix) and has_secret_word(name)


def secret_values(env: Mapping[str, str] | None = None, *, is_secret: Any = has_secret_word) -> list[str]:
    """Values of the secret-looking variables of ``env`` (default: this process's), longest first."""
    env = os.environ if env is None else env
    values = {value for key, value in env.items() if is_secret(key) and len(value) >= MIN_SECRET_LENGTH}
    return sorted(values, key=len, reverse=True)


def _mask_url_password(match: Any) -> str:
    """``scheme://user:password@`` -> ``scheme://user:***@`` (the rule's user part holds no ``:``, may be empty)."""
    scheme, _, rest = match.group(0).partition("://")
    user = rest.split(":", 1)[0]
    return f"{scheme}://{user}:{MASK}@"


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each of ``secrets``, URL passwords, secret parameters, Slack webhook paths and AWS access key
    ids replaced by ``***`` (what they belong to is kept: ``?token=***``, ``hooks.slack.com/services/***``)."""
    if not text:
        return text
    for secret in secrets:
        text = text.replace(secret, MASK)
    text = URL_CREDENTIALS.sub(_mask_url_password, text)
    text = SECRET_PARAMETER.sub(rf"\1{MASK}", text)
    text = SLACK_WEBHOOK.sub(rf"\1{MASK}", text)
    return AWS_ACCESS_KEY_ID.sub(MASK, text)
