"""A real local HTTP server speaking the SPEC §8 orders/events REST API, with faults on demand.

    with FakeApi(orders={day: rows}, events={day: rows}, pagination="cursor") as api:
        api.schedule(Fault.http(429, retry_after=1), on=[2])
        ApiSource(base_url=api.base_url, ...).extract_orders(day)

A `ThreadingHTTPServer` on 127.0.0.1 with an ephemeral port, started and stopped by the
owner (a fixture or a `with` block; no process is ever killed). Serves

* ``GET /orders?updated_since=ISO&updated_until=ISO&limit=N[&cursor=C|&offset=O]`` and
  ``GET /events?since=ISO&until=ISO&limit=N[...]`` over a dataset per UTC day (rows: lists
  of JSON-able dicts, which a test may extend between requests); a window of exactly one
  UTC day serves that day's rows as they are, a shorter orders window (an intraday tick)
  the rows whose ``updated_at`` parses and lies in ``[since, until)``;
* pagination ``cursor`` (opaque ``next_cursor``), ``offset`` (short last page) or ``next``
  (``next_style``: ``"absolute"``/``"relative"`` URL in the body, or ``"link"`` header);
* an optional reported total (``total="total"|"count"|"header"``, off by ``total_offset``);
* auth: a static bearer token, or OAuth2 client credentials at ``POST /oauth/token``
  (tokens really live ``token_lifetime`` s, advertised ``expires_in``; expired, unknown or
  revoked tokens get 401);
* a fixed-window rate limit sending ``X-RateLimit-Limit/Remaining/Reset`` (reset as delta
  or epoch seconds), answering 429 to a request over the limit (counted as a violation);
* faults by data-request number (`schedule`) or at random (`fail_rate`): any status with
  ``Retry-After`` (seconds or HTTP date), a slow response, a connection dropped mid-body
  (Content-Length announced, half the body sent) or before any response.

Every data request is logged in `requests` (thread-safe) for the tests' assertions.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import math
import random
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

ISO_FMT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Fault:
    kind: Literal["status", "slow", "drop_body", "drop_headers"]
    status: int = 503
    retry_after: float | None = None
    retry_after_date: bool = False
    delay: float = 0.0
    echo_auth: bool = False  # a badly behaved API echoing the credentials in its error body

    @classmethod
    def http(
        cls, status: int, retry_after: float | None = None, *, date: bool = False, echo=False
    ) -> Fault:
        """Answer `status`; ``Retry-After`` in seconds, or as an HTTP date when `date`."""
        return cls("status", status, retry_after, date, echo_auth=echo)

    @classmethod
    def slow(cls, delay: float) -> Fault:
        return cls("slow", delay=delay)

    @classmethod
    def drop_body(cls) -> Fault:
        return cls("drop_body")

    @classmethod
    def drop_headers(cls) -> Fault:
        return cls("drop_headers")


@dataclass
class RequestRecord:
    number: int  # 1-based among data requests (token requests are not numbered)
    method: str
    path: str
    query: dict[str, str]
    started: float  # time.time()
    authorization: str | None
    outcome: str = ""  # "200", "429", "slow", "drop_body", ...
    not_before: float | None = None  # Retry-After instant advertised by this response


@dataclass
class RateLimit:
    limit: int
    window: float
    reset: Literal["delta", "epoch"] = "delta"
    _start: float = 0.0
    _used: int = 0


@dataclass
class FakeApi:
    orders: dict[date, list[dict[str, Any]]] = field(default_factory=dict)
    events: dict[date, list[dict[str, Any]]] = field(default_factory=dict)
    pagination: Literal["cursor", "offset", "next"] = "cursor"
    next_style: Literal["absolute", "relative", "link"] = "absolute"
    total: Literal["total", "count", "header"] | None = None
    total_offset: int = 0
    max_page_size: int = 10_000
    static_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    token_lifetime: float = 3600.0
    advertised_expires_in: float | None = None
    rate_limit: RateLimit | None = None
    repeat_cursor: bool = False  # the last page points back to an already served cursor

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: list[RequestRecord] = []
        self.token_requests = 0
        self.rate_limit_violations = 0
        self._tokens: dict[str, float] = {}  # token -> expiry (time.time())
        self._scheduled: dict[int, Fault] = {}
        self._random: tuple[Fault, float, random.Random] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> FakeApi:
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> FakeApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth/token"

    # -- test controls -------------------------------------------------------------

    def schedule(self, fault: Fault, on: Iterable[int]) -> None:
        """Inject `fault` on the given data-request numbers (1-based)."""
        with self._lock:
            for n in on:
                self._scheduled[n] = fault

    def fail_rate(self, fault: Fault, rate: float, seed: int = 0) -> None:
        """Inject `fault` on a random `rate` share of data requests (deterministic seed)."""
        with self._lock:
            self._random = (fault, rate, random.Random(seed))

    def revoke_tokens(self) -> None:
        """Every issued OAuth token becomes invalid (the next use gets 401)."""
        with self._lock:
            self._tokens.clear()

    def data_requests(self, path: str | None = None) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    # -- internals -----------------------------------------------------------------

    def _next_fault(self, record: RequestRecord) -> Fault | None:
        with self._lock:
            fault = self._scheduled.pop(record.number, None)
            if fault is None and self._random is not None:
                candidate, rate, rng = self._random
                if rng.random() < rate:
                    fault = candidate
            return fault

    def _issue_token(self) -> tuple[str, float]:
        token = "tok-" + secrets.token_hex(12)
        with self._lock:
            self.token_requests += 1
            self._tokens[token] = time.time() + self.token_lifetime
        expires = self.advertised_expires_in
        return token, self.token_lifetime if expires is None else expires

    def _authorized(self, header: str | None) -> bool:
        if self.static_token is None and self.client_id is None:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        token = header[len("Bearer ") :]
        if self.static_token is not None:
            return token == self.static_token
        with self._lock:
            expiry = self._tokens.get(token)
        return expiry is not None and time.time() < expiry

    def _rate_limit_headers(self) -> tuple[bool, dict[str, str]]:
        """(allowed, headers) for one request under the fixed-window limit."""
        rl = self.rate_limit
        if rl is None:
            return True, {}
        with self._lock:
            now = time.time()
            if now >= rl._start + rl.window:
                rl._start, rl._used = now, 0
            allowed = rl._used < rl.limit
            if allowed:
                rl._used += 1
            else:
                self.rate_limit_violations += 1
            end = rl._start + rl.window
            reset = str(math.ceil(end - now)) if rl.reset == "delta" else str(math.ceil(end))
            return allowed, {
                "X-RateLimit-Limit": str(rl.limit),
                "X-RateLimit-Remaining": str(rl.limit - rl._used),
                "X-RateLimit-Reset": reset,
            }


class _BadRequest(Exception):
    pass


def _window(query: dict[str, str], since_key: str, until_key: str) -> tuple[datetime, datetime]:
    try:
        since = datetime.strptime(query[since_key], ISO_FMT).replace(tzinfo=UTC)
        until = datetime.strptime(query[until_key], ISO_FMT).replace(tzinfo=UTC)
    except (KeyError, ValueError) as exc:
        raise _BadRequest(f"{since_key}/{until_key} must be ISO UTC instants: {exc}") from None
    return since, until


def _day_from_window(query: dict[str, str], since_key: str, until_key: str) -> date:
    since, until = _window(query, since_key, until_key)
    if since.time() != datetime.min.time() or until - since != timedelta(days=1):
        raise _BadRequest("the window must be one UTC day")
    return since.date()


def _updated_at(row: dict[str, Any]) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(row.get("updated_at")).strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _rows_in_window(api: FakeApi, since: datetime, until: datetime) -> list[dict[str, Any]]:
    rows = []
    day = (since - timedelta(days=1)).date()
    while day <= until.date():
        for row in api.orders.get(day, []):
            moment = _updated_at(row)
            if moment is not None and since <= moment < until:
                rows.append(row)
        day += timedelta(days=1)
    return rows


class _Handler(BaseHTTPRequestHandler):
    api: FakeApi
    protocol_version = "HTTP/1.1"  # keep-alive, like a real API

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def handle(self) -> None:
        # A client that gave up (timeout) or closed after an error status resets the
        # keep-alive connection: expected here, not worth a traceback on stderr.
        with contextlib.suppress(ConnectionError):
            super().handle()

    # -- plumbing --------------------------------------------------------------------

    def _send(self, status: int, body: dict | list | None, headers: dict[str, str] | None = None):
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        try:
            self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # -- OAuth -----------------------------------------------------------------------

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        api = self.api
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if urlsplit(self.path).path != "/oauth/token":
            self._send(404, {"error": "not found"})
            return
        if form.get("grant_type") != "client_credentials":
            self._send(400, {"error": "unsupported_grant_type"})
            return
        if (form.get("client_id"), form.get("client_secret")) != (api.client_id, api.client_secret):
            self._send(401, {"error": "invalid_client"})
            return
        token, expires_in = api._issue_token()
        self._send(200, {"access_token": token, "token_type": "bearer", "expires_in": expires_in})

    # -- data ------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        api = self.api
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        with api._lock:
            record = RequestRecord(
                number=len(api.requests) + 1,
                method="GET",
                path=parts.path,
                query=query,
                started=time.time(),
                authorization=self.headers.get("Authorization"),
            )
            api.requests.append(record)

        fault = api._next_fault(record)
        if fault is not None and self._inject(fault, record):
            return
        allowed, rl_headers = api._rate_limit_headers()
        if not allowed:
            record.outcome = "429-rate-limit"
            self._send(429, {"error": "rate limited"}, {**rl_headers, "Retry-After": "1"})
            return
        if not api._authorized(record.authorization):
            record.outcome = "401"
            self._send(401, {"error": "invalid or expired token"}, rl_headers)
            return
        try:
            status, body, headers = self._page(parts.path, query)
        except _BadRequest as exc:
            record.outcome = "400"
            self._send(400, {"error": str(exc)}, rl_headers)
            return
        if fault is not None and fault.kind == "drop_body":
            record.outcome = "drop_body"
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self._drop()
            return
        if fault is not None and fault.kind == "slow":
            record.outcome = "slow"
            time.sleep(fault.delay)  # the client has given up by now; the write may fail
        else:
            record.outcome = str(status)
        self._send(status, body, {**rl_headers, **headers})

    def _inject(self, fault: Fault, record: RequestRecord) -> bool:
        """Apply a fault answered before the data; True when the request is done."""
        if fault.kind == "drop_headers":
            record.outcome = "drop_headers"
            self._drop()
            return True
        if fault.kind != "status":
            return False  # slow / drop_body need the real page first
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            if fault.retry_after_date:
                not_before = math.ceil(time.time() + fault.retry_after)
                headers["Retry-After"] = email.utils.formatdate(not_before, usegmt=True)
            else:
                not_before = time.time() + fault.retry_after
                headers["Retry-After"] = f"{fault.retry_after:g}"
            record.not_before = not_before
        body: dict[str, Any] = {"error": f"injected {fault.status}"}
        if fault.echo_auth:
            body["detail"] = f"credentials {record.authorization!s} not allowed here"
        record.outcome = str(fault.status)
        self._send(fault.status, body, headers)
        return True

    def _page(self, path: str, query: dict[str, str]) -> tuple[int, dict, dict[str, str]]:
        api = self.api
        if path == "/orders":
            since, until = _window(query, "updated_since", "updated_until")
            if since.time() == datetime.min.time() and until - since == timedelta(days=1):
                rows = api.orders.get(since.date(), [])
            elif since < until <= since + timedelta(days=1):
                rows = _rows_in_window(api, since, until)
            else:
                raise _BadRequest("the window must be at most one day")
        elif path == "/events":
            day = _day_from_window(query, "since", "until")
            rows = api.events.get(day, [])
        else:
            raise _BadRequest(f"unknown resource {path}")
        try:
            limit = int(query["limit"])
        except (KeyError, ValueError):
            raise _BadRequest("limit is required") from None
        if not 1 <= limit <= api.max_page_size:
            raise _BadRequest(f"limit must be in 1..{api.max_page_size}")
        if api.pagination == "offset":
            start = int(query.get("offset", "0"))
        else:
            cursor = query.get("cursor")
            start = _decode_cursor(cursor) if cursor else 0
        page = rows[start : start + limit]
        end = start + len(page)
        body: dict[str, Any] = {"data": page}
        headers: dict[str, str] = {}
        more = end < len(rows)
        if api.pagination == "cursor":
            body["next_cursor"] = _encode_cursor(end) if more else None
            if not more and api.repeat_cursor and len(rows) > 2 * limit:
                body["next_cursor"] = _encode_cursor(limit)  # already served
        elif api.pagination == "next":
            nxt = None
            if more or (api.repeat_cursor and len(rows) > 2 * limit):
                params = {k: v for k, v in query.items() if k not in ("cursor", "offset")}
                params["cursor"] = _encode_cursor(end if more else limit)
                nxt = f"{path}?{urlencode(params)}"
                if api.next_style == "absolute":
                    nxt = api.base_url + nxt
            if api.next_style == "link":
                if nxt is not None:
                    headers["Link"] = f'<{api.base_url}{nxt}>; rel="next", <{path}>; rel="first"'
            else:
                body["next"] = nxt
        if api.total is not None:
            total = len(rows) + api.total_offset
            if api.total == "header":
                headers["X-Total-Count"] = str(total)
            else:
                body[api.total] = total
        return 200, body, headers


def _encode_cursor(offset: int) -> str:
    return f"c{offset * 7919:x}"  # opaque-looking, decodable


def _decode_cursor(cursor: str) -> int:
    try:
        return int(cursor[1:], 16) // 7919
    except ValueError:
        raise _BadRequest(f"bad cursor {cursor!r}") from None
