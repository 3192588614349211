"""The one list of secret variables and the one redactor.

Every place that turns something into text bound for a log line, an exception or metadata
(the JSON logs, the API client, the PostgreSQL source, the Snowflake warehouse, settings
errors) masks secrets with `Redactor`, which knows every spelling a secret takes on the way:
the value itself, URL-encoded (``quote`` / ``quote_plus``), JSON-escaped, and a password
embedded in a URL (``user:password@``) or a key=value DSN (``password=…``). It also masks any
``password=…`` pair and ``user:…@`` URL credential it sees, known or not.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus, unquote, urlsplit

#: Environment variables whose values are secrets (SPEC §6: never logged or in metadata).
SECRET_ENV_VARS: tuple[str, ...] = (
    "ORDERS_API_TOKEN",
    "ORDERS_API_CLIENT_SECRET",
    "ORDERS_PG_DSN",
    "AWS_SECRET_ACCESS_KEY",
    "SNOWFLAKE_PASSWORD",
    "DAGSTER_PG_PASSWORD",
    "OPENLINEAGE_API_KEY",
    # A Slack/Teams-style webhook URL is a bearer credential in itself.
    "ORDERS_ALERT_WEBHOOK_URL",
    # http://user:password@host:9091 is how basic auth reaches a Pushgateway.
    "ORDERS_PROMETHEUS_PUSHGATEWAY",
)
MASK = "***"
# Shorter values would mask ordinary words ("a", "db"); no real secret is that short.
MIN_SECRET_LENGTH = 4

_PASSWORD_PAIR = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&;]+)")
_URL_CREDENTIAL = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]*@")


def secret_spellings(value: str | None) -> set[str]:
    """Every spelling of `value` worth masking (none shorter than `MIN_SECRET_LENGTH`)."""
    if not value:
        return set()
    parts = {value}
    if "://" in value:
        try:
            password = urlsplit(value).password
        except ValueError:
            password = None
        if password:
            parts |= {password, unquote(password)}
    for match in _PASSWORD_PAIR.finditer(value):
        parts.add(match.group(2).strip("'"))
    spellings: set[str] = set()
    for part in parts:
        spellings |= {part, quote(part, safe=""), quote_plus(part), json.dumps(part)[1:-1]}
    return {s for s in spellings if len(s) >= MIN_SECRET_LENGTH}


class Redactor:
    """Masks secrets in text: values given explicitly (`add`) and the current values of the
    environment variables `env_names` (looked up on every call, so a secret set or rotated
    after the redactor was made is masked at once; the pattern is rebuilt only on change)."""

    def __init__(
        self,
        values: Iterable[str | None] = (),
        env_names: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._env_names = tuple(env_names)
        self._environ = environ
        self._lock = threading.Lock()
        self._explicit: set[str] = set()
        self._key: tuple | None = None
        self._pattern: re.Pattern[str] | None = None
        for value in values:
            self.add(value)

    def add(self, value: str | None) -> None:
        spellings = secret_spellings(value)
        if spellings - self._explicit:
            with self._lock:
                self._explicit |= spellings

    def _current_pattern(self) -> re.Pattern[str] | None:
        environ = os.environ if self._environ is None else self._environ
        env_values = tuple(environ.get(name) for name in self._env_names)
        with self._lock:
            key = (env_values, len(self._explicit))
            if key != self._key:
                secrets = set(self._explicit)
                for value in env_values:
                    secrets |= secret_spellings(value)
                # Longest first, so a DSN is masked whole before its password is looked for.
                ordered = sorted(secrets, key=len, reverse=True)
                self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
                self._key = key
            return self._pattern

    def __call__(self, text: object) -> str:
        out = str(text)
        if not out:
            return out
        pattern = self._current_pattern()
        if pattern is not None:
            out = pattern.sub(MASK, out)
        out = _PASSWORD_PAIR.sub(rf"\g<1>{MASK}", out)
        return _URL_CREDENTIAL.sub(rf"\g<1>{MASK}@", out)

    def mentions_secret(self, text: object) -> bool:
        return self(text) != str(text)


_environment = Redactor(env_names=SECRET_ENV_VARS)


def redact(text: object) -> str:
    """`text` with the values of the secret environment variables masked."""
    return _environment(text)
