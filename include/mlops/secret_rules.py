"""What a secret looks like: the key and value rules that redaction, the pod checks and config errors share.

A bottom-layer module (no import from :mod:`mlops`), so that :mod:`mlops.config` can mask a refused value in
its error message and :mod:`mlops.redact` and :mod:`mlops.training.pod_spec` can apply the same rules without
importing each other in a circle.
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
