"""The REST API source (SPEC §8 REST API contract, §9 API rate-limit rule).

`ApiSource` extracts one UTC day of orders / events from an HTTP JSON API::

    GET {base_url}/orders?updated_since=<day>T00:00:00Z&updated_until=<day+1>T00:00:00Z
        &limit=N[&cursor=C]
    GET {base_url}/events?since=<day>T00:00:00Z&until=<day+1>T00:00:00Z&limit=N[&cursor=C]

answering ``{"data": [row, ...], "next_cursor": "..." | null}``. Pagination (setting):

* ``cursor`` — follow ``next_cursor`` until it is null/empty; a cursor the server already
  served is never requested twice (its page would be a duplicate; pagination stops there);
* ``offset`` — ``offset``/``limit``; stops on a short page;
* ``next``   — follow a ``"next"`` URL in the body (absolute or relative) or an RFC 8288
  ``Link: <...>; rel="next"`` header (same origin as ``base_url`` only: the bearer token
  is never sent elsewhere).

When the API reports a total (body ``"total"`` or ``"count"``, or ``X-Total-Count``),
the extracted row count must equal it, else `ApiTotalMismatchError`.

Streaming and exactly-once: a page is parsed only once its body has been fully received,
converted to one Polars frame (exactly the source columns, ``pl.String``: strings as
received, JSON numbers as written, booleans as ``true``/``false``, nested values as compact
JSON, missing keys null, unknown keys ignored) and yielded; a page that failed is
re-requested with the same cursor / offset / URL, so no row is lost or appended twice.

Faults: 429, 500, 502, 503, 504, timeouts and dropped connections (`httpx.TransportError`)
are retried by tenacity with exponential backoff and full jitter
(`wait_random_exponential`), waiting at least ``Retry-After`` (delta seconds or HTTP
date) on 429/503, until ``max_attempts`` per request or the extract's total
``deadline_seconds``. Other 4xx fail fast with `ApiHTTPError` (status + URL with query).

Auth: a static bearer token, or OAuth2 client credentials (``POST token_url`` with
``grant_type=client_credentials``, ``client_id``, ``client_secret``); the access token is
cached per process (reused across pages, extracts and resource instances), refreshed
``min(60 s, 10 %)`` before ``expires_in`` and once on a 401 (then the request is retried).

Rate limit: requests to one ``base_url`` share a process-wide, thread-safe interval limiter
(``requests_per_second``); ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset`` (or the IETF
``RateLimit-*`` names; reset as delta seconds or epoch seconds/milliseconds) slow it
down before the limit: remaining 0 pauses until the reset, a low remaining spreads the
remaining requests over the time left.

Secrets (token, client secret, OAuth access tokens) never appear in errors, their
cause/context chain, log lines, stats or ``repr(resource)``.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import json
import logging
import math
import ssl
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote, quote_plus

import httpx
import polars as pl
from dagster import InitResourceContext
from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception
from tenacity.wait import wait_random_exponential

from orders_platform.sources.base import RawSource
from orders_platform.sources.json_text import JsonNumber, json_text
from orders_platform.transforms.events import EVENT_SOURCE_COLUMNS
from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS

__all__ = [
    "ApiDeadlineError",
    "ApiHTTPError",
    "ApiResponseError",
    "ApiRetryError",
    "ApiSource",
    "ApiSourceError",
    "ApiTotalMismatchError",
]

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_AFTER_STATUSES = frozenset({429, 503})
BACKOFF_INITIAL_SECONDS = 0.5  # full-jitter window of the first retry: uniform(0, 0.5 s)
TOKEN_REFRESH_MARGIN_SECONDS = 60.0
TOKEN_REFRESH_MARGIN_FRACTION = 0.10
DEFAULT_TOKEN_LIFETIME_SECONDS = 3600.0  # when the token endpoint omits expires_in
RATE_LIMIT_LOW_FRACTION = 0.10  # "very low" remaining: 10 % of X-RateLimit-Limit ...
RATE_LIMIT_LOW_ABSOLUTE = 2  # ... or this many when the API does not send the limit
_SLEEP_EPSILON = 0.01  # sleep a hair past Retry-After / reset instants
_ERROR_BODY_CHARS = 300
_SECRET_FIELDS = frozenset({"token", "client_secret"})

# Indirections the tests may patch.
_sleep = time.sleep
_monotonic = time.monotonic


# --------------------------------------------------------------------------- errors


class ApiSourceError(RuntimeError):
    """Any failure of the API source. Messages never contain a secret."""


class ApiHTTPError(ApiSourceError):
    """A permanent HTTP error (4xx other than 429, or 401 after a token refresh)."""

    def __init__(self, message: str, *, status: int, method: str, url: str) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.url = url


class ApiRetryError(ApiSourceError):
    """Transient failures (429/5xx/timeouts/dropped connections) outlasted the retry budget."""

    def __init__(
        self, message: str, *, method: str, url: str, attempts: int, last_status: int | None
    ) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.attempts = attempts
        self.last_status = last_status


class ApiDeadlineError(ApiRetryError):
    """The extract's total deadline (``deadline_seconds``) would be exceeded."""


class ApiResponseError(ApiSourceError):
    """A 2xx response that does not follow the contract (not an object with a data list…)."""


class ApiTotalMismatchError(ApiSourceError):
    """The API reported a total that differs from the number of rows extracted."""

    def __init__(self, message: str, *, reported_total: int, rows_extracted: int) -> None:
        super().__init__(message)
        self.reported_total = reported_total
        self.rows_extracted = rows_extracted


class _TransientStatus(Exception):
    """Internal: a retryable HTTP status (never escapes the module)."""

    def __init__(
        self, where: str, status: int, description: str, retry_after: float | None
    ) -> None:
        super().__init__(description)
        self.where = where
        self.status = status
        self.retry_after = retry_after


class _TransientBody(Exception):
    """Internal: a 2xx body that is not JSON (truncated by a proxy…); retried."""

    def __init__(self, where: str, description: str) -> None:
        super().__init__(description)
        self.where = where


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, _TransientStatus | _TransientBody):
        return True
    # Timeouts, refused/reset/dropped connections, incomplete bodies; not a malformed URL.
    return isinstance(exc, httpx.TransportError) and not isinstance(
        exc, httpx.UnsupportedProtocol | httpx.ProxyError
    )


# --------------------------------------------------------------------------- redaction


class _Redactor:
    """Replaces every known secret by *** in text bound for messages and logs."""

    def __init__(self, secrets: Sequence[str | None]) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4:
            with self._lock:
                self._secrets.update({secret, quote(secret, safe=""), quote_plus(secret)})

    def __call__(self, text: object) -> str:
        out = str(text)
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            out = out.replace(secret, "***")
        # URLs in messages read as requested, with the ':' of ISO instants left readable.
        return out.replace("%3A", ":")


# --------------------------------------------------------------------------- rate limit


class _RateLimiter:
    """Process-wide request pacing for one API (thread-safe).

    Slots are handed out at most every ``1 / requests_per_second``; an API-advertised
    pause (remaining 0 until reset, Retry-After) or pacing (remaining low: spread the rest
    of the window) applies to every caller of the same base_url.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._pace_interval = 0.0
        self._pace_until = 0.0

    def reserve(self, requests_per_second: float) -> float:
        """Reserve the next send slot; returns its monotonic time (may be in the past)."""
        interval = 1.0 / requests_per_second if requests_per_second > 0 else 0.0
        with self._lock:
            now = _monotonic()
            if now < self._pace_until:
                interval = max(interval, self._pace_interval)
            slot = max(now, self._next_slot, self._paused_until)
            self._next_slot = slot + interval
            return slot

    def pause_until(self, until: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, until)

    def pace(self, interval: float, until: float) -> None:
        with self._lock:
            self._pace_interval = interval
            self._pace_until = until


_LIMITERS: dict[str, _RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def _limiter_for(base_url: str) -> _RateLimiter:
    key = base_url.rstrip("/")
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None:
            limiter = _LIMITERS[key] = _RateLimiter()
        return limiter


def _header(headers: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = headers.get(name)
        if value is not None and value.strip():
            return value.strip()
    return None


def _parse_number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.split(",")[0].strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_rate_limit_reset(value: str | None, *, now_epoch: float | None = None) -> float | None:
    """Seconds until a ``X-RateLimit-Reset`` value: delta seconds (``30``), epoch seconds
    (``1773705600``) or epoch milliseconds; None when absent or unparseable."""
    number = _parse_number(value)
    if number is None:
        return None
    now_epoch = time.time() if now_epoch is None else now_epoch
    if number > 1e12:  # epoch milliseconds
        return max(0.0, number / 1000.0 - now_epoch)
    if number > 1e9:  # epoch seconds (2001-09-09 onwards; no API asks for a 30-year wait)
        return max(0.0, number - now_epoch)
    return max(0.0, number)


def parse_retry_after(value: str | None, *, now_epoch: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now_epoch = time.time() if now_epoch is None else now_epoch
    return max(0.0, when.timestamp() - now_epoch)


# --------------------------------------------------------------------------- OAuth tokens


@dataclass
class _Token:
    value: str
    refresh_at: float  # monotonic


_TOKENS: dict[tuple[str, str], _Token] = {}
_TOKEN_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_TOKENS_LOCK = threading.Lock()


def _token_lock(key: tuple[str, str]) -> threading.Lock:
    with _TOKENS_LOCK:
        return _TOKEN_LOCKS.setdefault(key, threading.Lock())


def _token_key(token_url: str, client_id: str, client_secret: str) -> tuple[str, str]:
    digest = hashlib.sha256(client_secret.encode()).hexdigest()
    return (token_url, f"{client_id}\x00{digest}")


def _refresh_margin(lifetime: float) -> float:
    return min(TOKEN_REFRESH_MARGIN_SECONDS, TOKEN_REFRESH_MARGIN_FRACTION * lifetime)


# --------------------------------------------------------------------------- page parsing


# One JSON-to-text rule for every source: numbers as written, true/false, nested compact.
_JsonNumber = JsonNumber
_to_string = json_text


def rows_to_frame(rows: list[Any], columns: Sequence[str], *, may_hold_bools: bool = True):
    """One page of JSON objects as a frame of exactly `columns`, all ``pl.String``.

    Strings are kept as received, None/missing keys are null, other values go through
    `sources.json_text.json_text` (numbers as written, ``true``/``false``, nested
    lists/objects as compact JSON); unknown keys are ignored.
    """
    schema = {c: pl.String for c in columns}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ApiResponseError(
                f"item {i} of the page's data list is a {type(row).__name__}, not an object"
            )
    if not may_hold_bools:
        # Fast path: Polars builds the columns in Rust. It refuses nested values, and pages
        # that may hold a boolean take the slow path (strict mode refuses them too).
        try:
            return pl.from_dicts(rows, schema=schema, strict=True)
        except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError):
            pass
    data = {}
    for column in columns:
        values = [row.get(column) for row in rows]
        if not all(v is None or v.__class__ is str for v in values):
            values = [_to_string(v) for v in values]
        data[column] = pl.Series(column, values, dtype=pl.String)
    return pl.DataFrame(data, schema=schema)


def _parse_json(body: bytes) -> Any:
    # Numbers are kept exactly as written ("1234.50" stays "1234.50": money is never
    # round-tripped through a float; for a Python-serialised float the text equals str()).
    return json.loads(
        body, parse_float=_JsonNumber, parse_int=_JsonNumber, parse_constant=_JsonNumber
    )


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) and number == int(number) else None


def _link_next(headers: httpx.Headers) -> str | None:
    """The target of an RFC 8288 ``Link: <...>; rel="next"`` header, if any."""
    if "link" not in headers:
        return None
    return httpx.Response(200, headers=headers).links.get("next", {}).get("url")


def _day_window(day: date | str) -> tuple[str, str]:
    if isinstance(day, datetime):
        day = day.date()
    elif isinstance(day, str):
        day = date.fromisoformat(day)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return start.strftime(fmt), (start + timedelta(days=1)).strftime(fmt)


_SSL_CONTEXT: ssl.SSLContext | None = None
_SSL_LOCK = threading.Lock()


def _ssl_context() -> ssl.SSLContext:
    """One verifying SSL context per process (loading the CA bundle costs ~0.1 s)."""
    global _SSL_CONTEXT
    with _SSL_LOCK:
        if _SSL_CONTEXT is None:
            _SSL_CONTEXT = httpx.create_ssl_context()
        return _SSL_CONTEXT


# --------------------------------------------------------------------------- resource


class ApiSource(RawSource):
    """Orders and events from the REST API (SPEC §8). Secrets are plain ``str | None``
    fields so they can be given as ``dagster.EnvVar("ORDERS_API_TOKEN")`` etc.; they are
    masked in ``repr`` and never logged."""

    base_url: str
    token: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    pagination: Literal["cursor", "offset", "next"] = "cursor"
    page_size: int = 1000
    requests_per_second: float = 10.0
    timeout_seconds: float = 30.0
    deadline_seconds: float = 600.0
    max_attempts: int = 8
    backoff_max_seconds: float = 60.0

    @property
    def name(self) -> str:
        return "api"

    def __repr_args__(self):  # noqa: ANN204 - pydantic hook
        for key, value in super().__repr_args__():
            yield key, ("***" if key in _SECRET_FIELDS and value else value)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._check_config()  # a bad setting fails at resource init, before any request

    def extract_orders(self, day: date) -> Iterator[pl.DataFrame]:
        since, until = _day_window(day)
        window = {"updated_since": since, "updated_until": until}
        return self._extract("orders", window, ORDER_SOURCE_COLUMNS)

    def extract_events(self, day: date) -> Iterator[pl.DataFrame]:
        since, until = _day_window(day)
        return self._extract("events", {"since": since, "until": until}, EVENT_SOURCE_COLUMNS)

    # -- internals -------------------------------------------------------------------

    def _check_config(self) -> None:
        problems = []
        url = httpx.URL(self.base_url or "")
        if url.scheme not in ("http", "https") or not url.host:
            problems.append(f"base_url must be an http(s) URL, got {self.base_url!r}")
        if self.page_size < 1:
            problems.append(f"page_size must be >= 1, got {self.page_size}")
        if self.requests_per_second < 0:
            problems.append(
                f"requests_per_second must be >= 0 (0 = unlimited), got {self.requests_per_second}"
            )
        if self.timeout_seconds <= 0:
            problems.append(f"timeout_seconds must be > 0, got {self.timeout_seconds}")
        if self.deadline_seconds <= 0:
            problems.append(f"deadline_seconds must be > 0, got {self.deadline_seconds}")
        if self.max_attempts < 1:
            problems.append(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.backoff_max_seconds < 0:
            problems.append(f"backoff_max_seconds must be >= 0, got {self.backoff_max_seconds}")
        if not self.token:
            oauth = {
                "token_url": self.token_url,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            }
            missing = [k for k, v in oauth.items() if not v]
            if 0 < len(missing) < 3:
                problems.append(
                    "OAuth2 client credentials need token_url, client_id and client_secret; "
                    f"missing: {', '.join(missing)}"
                )
        if problems:
            raise ApiSourceError("invalid ApiSource configuration: " + "; ".join(problems))

    def _extract(
        self, resource: str, window: dict[str, str], columns: Sequence[str]
    ) -> Iterator[pl.DataFrame]:
        self._check_config()
        return _Extraction(self, resource, window, tuple(columns)).run()


class _Extraction:
    """The state of one extract call: its client, deadline, counters and pagination."""

    def __init__(
        self, source: ApiSource, resource: str, window: dict[str, str], columns: tuple[str, ...]
    ) -> None:
        self.source = source
        self.resource = resource
        self.window = window
        self.columns = columns
        self.base_url = source.base_url.rstrip("/")
        self.endpoint = f"{self.base_url}/{resource}"
        self.limiter = _limiter_for(self.base_url)
        self.redact = _Redactor([source.token, source.client_secret])
        if source.token:
            self.auth_mode = "token"
        elif source.token_url and source.client_id and source.client_secret:
            self.auth_mode = "oauth"
        else:
            self.auth_mode = "none"
        self.deadline = math.inf
        self.started = 0.0
        # counters (stats)
        self.pages = 0
        self.rows = 0
        self.requests = 0
        self.retries = 0
        self.retry_wait = 0.0
        self.rate_limit_wait = 0.0
        self.token_requests = 0
        self.token_refreshes = 0
        self.repeated_pages = 0
        self.reported_total: int | None = None
        self._stop_reason = ""

    # -- driver ----------------------------------------------------------------------

    def run(self) -> Iterator[pl.DataFrame]:
        self.started = _monotonic()
        self.deadline = self.started + self.source.deadline_seconds
        try:
            with httpx.Client(
                verify=_ssl_context(),
                timeout=self.source.timeout_seconds,
                follow_redirects=True,  # httpx drops Authorization on cross-origin redirects
                headers={"Accept": "application/json", "User-Agent": "orders-platform"},
            ) as client:
                self.client = client
                yield from self._pages()
        finally:
            self.source._record_stats(**self.stats())

    def stats(self) -> dict[str, Any]:
        return {
            "endpoint": self.resource,
            "pagination": self.source.pagination,
            "rows_extracted": self.rows,
            "rows_in_overlap": 0,
            "pages": self.pages,
            "requests": self.requests,
            "retries": self.retries,
            "retry_wait_seconds": round(self.retry_wait, 3),
            "rate_limit_waits_seconds": round(self.rate_limit_wait, 3),
            "token_requests": self.token_requests,
            "token_refreshes": self.token_refreshes,
            "repeated_pages_skipped": self.repeated_pages,
            "reported_total": self.reported_total,
            "elapsed_seconds": round(_monotonic() - self.started, 3) if self.started else 0.0,
        }

    def _pages(self) -> Iterator[pl.DataFrame]:
        mode = self.source.pagination
        limit = self.source.page_size
        url: str = self.endpoint
        params: dict[str, Any] | None = {**self.window, "limit": limit}
        offset = 0
        if mode == "offset":
            params["offset"] = offset
        seen: set[str] = set()
        yielded_any = False
        while True:
            payload, headers, request_url, has_bool = self._get_json(url, params)
            seen.add(str(request_url))
            if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
                raise ApiResponseError(
                    self.redact(
                        f"GET {request_url} answered 2xx but not the contract's "
                        f'{{"data": [...], ...}} object (got {type(payload).__name__})'
                    )
                )
            data = payload.pop("data")
            frame = self._frame(data, has_bool, request_url)
            self.pages += 1
            self.rows += frame.height
            total = self._reported_total(payload, headers)
            if total is not None:
                self.reported_total = total
            page_rows = len(data)
            del data
            if frame.height:
                yielded_any = True
                yield frame
            del frame

            if mode == "cursor":
                raw = payload.get("next_cursor")
                if raw is None or str(raw) == "":
                    break
                cursor = str(raw)
                if f"cursor:{cursor}" in seen:
                    self._repeated(f"cursor {cursor!r}", request_url)
                    break
                seen.add(f"cursor:{cursor}")
                params = {**self.window, "limit": limit, "cursor": cursor}
            elif mode == "offset":
                if page_rows < limit:
                    break
                offset += page_rows
                params = {**self.window, "limit": limit, "offset": offset}
            else:
                nxt = payload.get("next") or _link_next(headers)
                if nxt is None or str(nxt).strip() == "":
                    break
                target = request_url.join(str(nxt).strip())
                self._check_same_origin(target, request_url)
                if str(target) in seen:
                    self._repeated(f"next URL {target}", request_url)
                    break
                url, params = str(target), None

        if self.reported_total is not None and self.reported_total != self.rows:
            raise ApiTotalMismatchError(
                self.redact(
                    f"{self.endpoint} ({self._window_text()}): the API reported "
                    f"total={self.reported_total} but {self.rows} rows were extracted in "
                    f"{self.pages} pages ({self.source.pagination} pagination); refusing an "
                    "incomplete or duplicated extract"
                ),
                reported_total=self.reported_total,
                rows_extracted=self.rows,
            )
        if not yielded_any:
            yield pl.DataFrame(schema={c: pl.String for c in self.columns})

    def _frame(self, data: list, has_bool: bool, request_url: httpx.URL) -> pl.DataFrame:
        problem = None
        try:
            return rows_to_frame(data, self.columns, may_hold_bools=has_bool)
        except ApiResponseError as exc:
            problem = str(exc)
        raise ApiResponseError(self.redact(f"GET {request_url}: {problem}"))

    def _window_text(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.window.items())

    def _repeated(self, what: str, request_url: httpx.URL) -> None:
        self.repeated_pages += 1
        log.warning(
            "%s",
            self.redact(
                f"GET {request_url}: the API handed out {what} again; its page was already "
                "extracted, stopping pagination instead of appending it twice"
            ),
        )

    def _check_same_origin(self, target: httpx.URL, current: httpx.URL) -> None:
        base = httpx.URL(self.base_url)
        if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
            raise ApiResponseError(
                self.redact(
                    f"GET {current}: refusing to follow a next link to another origin "
                    f"({target.scheme}://{target.host}); the API token is only sent to "
                    f"{base.scheme}://{base.host}"
                )
            )

    @staticmethod
    def _reported_total(payload: dict, headers: httpx.Headers) -> int | None:
        for key in ("total", "count"):
            total = _int_or_none(payload.get(key))
            if total is not None:
                return total
        return _int_or_none(headers.get("x-total-count"))

    # -- one page, with retries --------------------------------------------------------

    def _get_json(
        self, url: str, params: dict[str, Any] | None
    ) -> tuple[Any, httpx.Headers, httpx.URL, bool]:
        result = self._retrying(lambda: self._attempt_get(url, params))
        if isinstance(result, RetryError):
            display_url = httpx.URL(url, params=params) if params else httpx.URL(url)
            raise self._exhausted("GET", display_url, result)
        return result

    def _retrying(self, fn):
        """Run fn under the retry policy; returns its result or the final RetryError."""
        retrying = Retrying(
            stop=self._stop,
            wait=self._wait,
            retry=retry_if_exception(_is_transient),
            before_sleep=self._before_sleep,
            sleep=_sleep,
            reraise=False,
        )
        self._stop_reason = ""
        try:
            return retrying(fn)
        except RetryError as exc:
            return exc

    def _stop(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self.source.max_attempts:
            self._stop_reason = f"max_attempts={self.source.max_attempts} reached"
            return True
        if _monotonic() + state.upcoming_sleep >= self.deadline:
            self._stop_reason = (
                f"the next retry (in {state.upcoming_sleep:.1f} s) would pass the extract "
                f"deadline of {self.source.deadline_seconds:g} s"
            )
            return True
        return False

    def _wait(self, state: RetryCallState) -> float:
        jitter = wait_random_exponential(
            multiplier=BACKOFF_INITIAL_SECONDS, max=self.source.backoff_max_seconds
        )(state)
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return max(jitter, retry_after + _SLEEP_EPSILON)
        return jitter

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.retries += 1
        self.retry_wait += state.upcoming_sleep
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            # Everyone calling this API holds off, not just this request.
            self.limiter.pause_until(_monotonic() + retry_after + _SLEEP_EPSILON)
        log.warning(
            "%s",
            self.redact(
                f"{self._where(exc)}: {self._describe(exc)}; retry {state.attempt_number}/"
                f"{self.source.max_attempts - 1} in {state.upcoming_sleep:.2f} s"
                + (f" (Retry-After {retry_after:.1f} s)" if retry_after is not None else "")
            ),
        )

    def _describe(self, exc: BaseException | None) -> str:
        """What went wrong, e.g. "HTTP 503 Service Unavailable" or "ReadTimeout: timed out"."""
        if exc is None:
            return "unknown error"
        if isinstance(exc, _TransientStatus | _TransientBody):
            return str(exc)
        # httpx messages carry no headers (so no credentials); redacted all the same.
        return self.redact(f"{type(exc).__name__}: {str(exc) or '(no detail)'}")

    def _where(self, exc: BaseException | None) -> str:
        """The request that failed, e.g. "GET http://api/orders?…"."""
        where = getattr(exc, "where", None)
        if where is None:
            with contextlib.suppress(AttributeError, RuntimeError):  # no request attached
                where = f"{exc.request.method} {exc.request.url}"  # type: ignore[union-attr]
        return self.redact(where or self.resource)

    def _exhausted(self, method: str, url: httpx.URL, failure: RetryError) -> ApiRetryError:
        attempt = failure.last_attempt
        exc = attempt.exception()
        status = getattr(exc, "status", None)
        reason = self._stop_reason or "retry budget exhausted"
        cls = ApiDeadlineError if "deadline" in reason else ApiRetryError
        message = self.redact(
            f"{method} {url} failed after {attempt.attempt_number} attempt(s) in "
            f"{_monotonic() - self.started:.1f} s ({reason}); last error: {self._describe(exc)}"
        )
        return cls(
            message,
            method=method,
            url=self.redact(url),
            attempts=attempt.attempt_number,
            last_status=status,
        )

    def _deadline_error(self, method: str, url: object, what: str) -> ApiDeadlineError:
        return ApiDeadlineError(
            self.redact(
                f"{method} {url}: {what} would pass the extract deadline of "
                f"{self.source.deadline_seconds:g} s"
            ),
            method=method,
            url=self.redact(url),
            attempts=0,
            last_status=None,
        )

    def _attempt_get(self, url: str, params: dict[str, Any] | None):
        refreshed = False
        while True:
            response, token = self._send(url, params)
            if response.status_code == 401 and self.auth_mode == "oauth" and not refreshed:
                response.close()
                refreshed = True
                self.token_refreshes += 1
                log.info(
                    "%s",
                    self.redact(
                        f"GET {response.request.url}: HTTP 401, refreshing the OAuth token "
                        "and retrying once"
                    ),
                )
                self._invalidate_token(token)
                continue
            return self._read_json(response, "GET")

    def _send(self, url: str, params: dict[str, Any] | None) -> tuple[httpx.Response, str | None]:
        """Wait for a rate-limit slot, then send with a token valid *now* (streamed)."""
        slot = self.limiter.reserve(self.source.requests_per_second)
        now = _monotonic()
        if slot > now:
            if slot >= self.deadline:
                raise self._deadline_error(
                    "GET",
                    httpx.URL(url, params=params),
                    f"waiting {slot - now:.1f} s for the rate limit",
                )
            _sleep(slot - now)
            self.rate_limit_wait += slot - now
        token = self._access_token()
        remaining = self.deadline - _monotonic()
        if remaining <= 0:
            raise self._deadline_error("GET", httpx.URL(url, params=params), "another request")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        timeout = min(self.source.timeout_seconds, max(remaining, 0.05))
        request = self.client.build_request(
            "GET", url, params=params, headers=headers, timeout=timeout
        )
        self.requests += 1
        response = self.client.send(request, stream=True)
        self._observe_rate_limit(response.headers)
        return response, token

    def _read_json(self, response: httpx.Response, method: str, *, token_endpoint: bool = False):
        """Status handling and full body read of a streamed response (closed here)."""
        try:
            status = response.status_code
            url = response.request.url
            if status in TRANSIENT_STATUSES:
                retry_after = None
                if status in RETRY_AFTER_STATUSES:
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                raise _TransientStatus(
                    f"{method} {url}",
                    status,
                    f"HTTP {status} {response.reason_phrase}",
                    retry_after,
                )
            if not 200 <= status < 300:
                snippet = self._body_snippet(response)
                hint = ""
                if token_endpoint:
                    hint = " (OAuth token request: check the client id/secret and token URL)"
                elif status == 401:
                    hint = {
                        "token": " (the static API token was rejected)",
                        "oauth": " (rejected even with a freshly issued OAuth token)",
                        "none": " (the API requires credentials; none are configured)",
                    }[self.auth_mode]
                raise ApiHTTPError(
                    self.redact(
                        f"{method} {url} failed: HTTP {status} {response.reason_phrase}{hint}; "
                        f"permanent error, not retried{snippet}"
                    ),
                    status=status,
                    method=method,
                    url=self.redact(url),
                )
            chunks = []
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                if _monotonic() > self.deadline:
                    raise self._deadline_error(method, url, "reading the response body")
            body = b"".join(chunks)
            del chunks
        finally:
            response.close()
        payload, valid = None, True
        try:
            payload = _parse_json(body)
        except ValueError:
            valid = False
        if not valid:  # raised outside the except block: no context chained to it
            raise _TransientBody(
                f"{method} {url}",
                f"HTTP {status} with a body that is not valid JSON ({len(body)} bytes)",
            )
        # Conservative (a string may contain the word): only picks the slower exact path.
        has_bool = b"true" in body or b"false" in body
        return payload, response.headers, url, has_bool

    def _body_snippet(self, response: httpx.Response) -> str:
        raw = b""
        try:
            for chunk in response.iter_bytes():
                raw += chunk
                if len(raw) >= _ERROR_BODY_CHARS * 4:
                    break
        except httpx.HTTPError:
            return ""
        text = " ".join(raw.decode("utf-8", "replace").split())[:_ERROR_BODY_CHARS]
        return f"; response body: {text}" if text else ""

    def _observe_rate_limit(self, headers: httpx.Headers) -> None:
        remaining = _parse_number(_header(headers, "x-ratelimit-remaining", "ratelimit-remaining"))
        if remaining is None:
            return
        reset_in = parse_rate_limit_reset(_header(headers, "x-ratelimit-reset", "ratelimit-reset"))
        if reset_in is None:
            reset_in = parse_retry_after(headers.get("retry-after"))
        if reset_in is None:
            return
        now = _monotonic()
        limit = _parse_number(_header(headers, "x-ratelimit-limit", "ratelimit-limit"))
        low = (
            max(1.0, math.ceil(limit * RATE_LIMIT_LOW_FRACTION))
            if limit
            else RATE_LIMIT_LOW_ABSOLUTE
        )
        if remaining <= 0:
            self.limiter.pause_until(now + reset_in + _SLEEP_EPSILON)
            log.info(
                "%s: rate limit exhausted (X-RateLimit-Remaining 0), pausing %.2f s until reset",
                self.resource,
                reset_in,
            )
        elif remaining <= low:
            # Spread what is left of the window over the time until it resets.
            self.limiter.pace(reset_in / remaining, now + reset_in)

    # -- auth --------------------------------------------------------------------------

    def _access_token(self) -> str | None:
        if self.auth_mode == "token":
            return self.source.token
        if self.auth_mode == "none":
            return None
        source = self.source
        key = _token_key(source.token_url, source.client_id, source.client_secret)
        with _token_lock(key):  # one fetch per client at a time; the others reuse its token
            cached = _TOKENS.get(key)
            if cached is not None and _monotonic() < cached.refresh_at:
                self.redact.add(cached.value)
                return cached.value
            token = self._fetch_token()
            _TOKENS[key] = token
            return token.value

    def _invalidate_token(self, token: str | None) -> None:
        source = self.source
        key = _token_key(source.token_url, source.client_id, source.client_secret)
        with _token_lock(key):
            cached = _TOKENS.get(key)
            if cached is not None and cached.value == token:  # not one another thread renewed
                del _TOKENS[key]

    def _fetch_token(self) -> _Token:
        source = self.source
        url = httpx.URL(source.token_url)
        result = self._retrying(self._attempt_token)
        if isinstance(result, RetryError):
            raise self._exhausted("POST", url, result)
        return result

    def _attempt_token(self) -> _Token:
        source = self.source
        remaining = self.deadline - _monotonic()
        if remaining <= 0:
            raise self._deadline_error("POST", source.token_url, "an OAuth token request")
        requested = _monotonic()
        self.token_requests += 1
        response = self.client.send(
            self.client.build_request(
                "POST",
                source.token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": source.client_id,
                    "client_secret": source.client_secret,
                },
                timeout=min(source.timeout_seconds, max(remaining, 0.05)),
            ),
            stream=True,
        )
        payload, _, url, _ = self._read_json(response, "POST", token_endpoint=True)
        access = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(access, str) or not access:
            raise ApiResponseError(f"POST {url}: the OAuth token response has no access_token")
        self.redact.add(access)
        lifetime = _parse_number(str(payload.get("expires_in")))
        if lifetime is None or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME_SECONDS
        log.info("%s: obtained an OAuth access token valid for %.0f s", self.resource, lifetime)
        return _Token(access, requested + lifetime - _refresh_margin(lifetime))
