"""ApiSource against a real local HTTP server (orders_platform_tests/servers/fake_api.py).

SPEC §7/§8/§9: every pagination mode, every transient fault (429 with Retry-After in both
forms, 5xx, timeouts, dropped connections), permanent 4xx failing fast, OAuth client
credentials, the client-side and API-advertised rate limits, the reported total, and
secrets never leaking into errors or logs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date

import polars as pl
import pytest

from orders_platform.sources import api as api_module
from orders_platform.sources.api import (
    ApiDeadlineError,
    ApiHTTPError,
    ApiResponseError,
    ApiRetryError,
    ApiSource,
    ApiSourceError,
    ApiTotalMismatchError,
    parse_rate_limit_reset,
    parse_retry_after,
    rows_to_frame,
)
from orders_platform.sources.base import RawSource
from orders_platform.sources.demo import generate_orders
from orders_platform.sources.demo_events import generate_events
from orders_platform.transforms.events import EVENT_SOURCE_COLUMNS
from orders_platform.transforms.schema import ORDER_SOURCE_COLUMNS
from orders_platform_tests.servers.fake_api import FakeApi, Fault, RateLimit

DAY = date(2026, 3, 17)
TOKEN = "static-s3cr3t-token-value"
CLIENT_ID = "orders-platform"
CLIENT_SECRET = "client-s3cr3t-value"
PAGE = 250  # 2 500 demo orders -> 2 575 rows -> 11 pages


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def orders() -> pl.DataFrame:
    return generate_orders(DAY, 2_500)


@pytest.fixture(scope="module")
def events() -> pl.DataFrame:
    return generate_events(DAY, 1_200, orders_per_day=2_500)


@pytest.fixture(autouse=True)
def _fresh_module_state() -> Iterator[None]:
    """Ports are reused by the OS: never let a token or a pause leak between tests."""
    api_module._TOKENS.clear()
    api_module._LIMITERS.clear()
    yield
    api_module._TOKENS.clear()
    api_module._LIMITERS.clear()


@pytest.fixture
def serve(orders: pl.DataFrame, events: pl.DataFrame) -> Iterator[Callable[..., FakeApi]]:
    """Start a FakeApi over the demo day (stopped at teardown)."""
    started: list[FakeApi] = []

    def start(**config) -> FakeApi:
        config.setdefault("orders", {DAY: orders.to_dicts()})
        config.setdefault("events", {DAY: events.to_dicts()})
        api = FakeApi(**config).start()
        started.append(api)
        return api

    yield start
    for api in started:
        api.stop()


def make_source(api: FakeApi, **overrides) -> ApiSource:
    config = {
        "base_url": api.base_url,
        "page_size": PAGE,
        "requests_per_second": 0.0,  # unlimited unless a test is about the limiter
        "timeout_seconds": 2.0,
        "backoff_max_seconds": 0.2,
        "pagination": api.pagination,
    }
    if api.static_token:
        config["token"] = api.static_token
    if api.client_id:
        config |= {
            "token_url": api.token_url,
            "client_id": api.client_id,
            "client_secret": api.client_secret,
        }
    return ApiSource(**(config | overrides))


def collect(batches: Iterator[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(list(batches), how="vertical")


def assert_exactly(got: pl.DataFrame, expected: pl.DataFrame) -> None:
    """Same rows, same order, no loss, no duplicates; all columns strings."""
    assert got.columns == expected.columns
    assert all(dtype == pl.String for dtype in got.dtypes)
    assert got.height == expected.height
    assert got.equals(expected)


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts = [str(current), repr(current), *map(repr, current.args)]
        texts += [repr(v) for v in vars(current).values()]
        for secret in secrets:
            assert not any(secret in text for text in texts), (type(current), secret)
        todo += [current.__cause__, current.__context__]


def retried_request_pairs(api: FakeApi) -> list[tuple]:
    """(faulted request, the next request for the same query) for every faulted request."""
    requests = api.data_requests()
    pairs = []
    for i, record in enumerate(requests):
        if record.outcome not in ("200",):
            follow = next(r for r in requests[i + 1 :] if r.query == record.query)
            pairs.append((record, follow))
    return pairs


# --------------------------------------------------------------------------- pagination


@pytest.mark.parametrize(
    ("pagination", "next_style"),
    [
        ("cursor", "absolute"),
        ("offset", "absolute"),
        ("next", "absolute"),
        ("next", "relative"),
        ("next", "link"),
    ],
)
def test_every_pagination_mode_extracts_the_day_exactly(
    serve, orders: pl.DataFrame, pagination: str, next_style: str
) -> None:
    api = serve(pagination=pagination, next_style=next_style)
    source = make_source(api)

    batches = list(source.extract_orders(DAY))

    assert_exactly(pl.concat(batches), orders)
    assert len(batches) == 11 and all(b.height <= PAGE for b in batches)
    first = api.data_requests()[0]
    assert first.path == "/orders"
    assert first.query["updated_since"] == "2026-03-17T00:00:00Z"
    assert first.query["updated_until"] == "2026-03-18T00:00:00Z"
    assert first.query["limit"] == str(PAGE)
    assert len(api.data_requests()) == 11
    stats = source.last_extract_stats()
    assert stats["rows_extracted"] == orders.height and stats["pages"] == 11
    assert stats["retries"] == 0 and stats["reported_total"] is None


@pytest.mark.parametrize("pagination", ["cursor", "offset", "next"])
def test_events_are_extracted_in_every_mode(serve, events: pl.DataFrame, pagination) -> None:
    api = serve(pagination=pagination)

    got = collect(make_source(api, page_size=300).extract_events(DAY))

    assert got.columns == list(EVENT_SOURCE_COLUMNS)
    assert_exactly(got, events)
    first = api.data_requests("/events")[0]
    assert (first.query["since"], first.query["until"]) == (
        "2026-03-17T00:00:00Z",
        "2026-03-18T00:00:00Z",
    )


def test_offset_mode_stops_on_a_short_page(serve, orders: pl.DataFrame) -> None:
    api = serve(pagination="offset")
    collect(make_source(api).extract_orders(DAY))
    offsets = [int(r.query["offset"]) for r in api.data_requests()]
    assert offsets == list(range(0, orders.height, PAGE))  # 2 575 rows: last page is short


def test_pages_are_streamed_not_collected_first(serve) -> None:
    api = serve()
    batches = make_source(api).extract_orders(DAY)
    first = next(batches)
    assert first.height == PAGE
    assert len(api.data_requests()) == 1  # the rest of the day is not fetched yet
    batches.close()


def test_an_empty_day_yields_one_empty_frame_with_the_schema(serve) -> None:
    api = serve(orders={})
    batches = list(make_source(api).extract_orders(DAY))
    assert len(batches) == 1 and batches[0].height == 0
    assert batches[0].schema == {c: pl.String for c in ORDER_SOURCE_COLUMNS}


def test_values_become_strings_missing_keys_null_unknown_keys_ignored(serve) -> None:
    rows = [
        {"order_id": 42, "order_amount": 1234.5, "status": " DELIVERED ", "extra": {"x": [1]}},
        {"order_id": "007", "notes": None, "promo_code": True, "delivery_fee": [1, 2]},
        {"customer_id": 9, "discount_amount": 0, "created_at": "2026-03-17T20:14:32+05:30"},
    ]
    api = serve(orders={DAY: rows})

    got = collect(make_source(api).extract_orders(DAY))

    assert got.columns == list(ORDER_SOURCE_COLUMNS) and got.height == 3
    assert got["order_id"].to_list() == ["42", "007", None]
    assert got["order_amount"].to_list() == ["1234.5", None, None]
    assert got["status"].to_list() == [" DELIVERED ", None, None]
    assert got["promo_code"].to_list() == [None, "true", None]  # as JSON spells it
    assert got["delivery_fee"].to_list() == [None, "[1,2]", None]  # nested: compact JSON
    assert got["customer_id"].to_list() == [None, None, "9"]
    assert got["discount_amount"].to_list() == [None, None, "0"]
    assert got["created_at"][2] == "2026-03-17T20:14:32+05:30"
    assert "extra" not in got.columns


def test_json_numbers_keep_their_exact_text() -> None:
    # parse_float=str: money is never round-tripped through a float.
    payload = api_module._parse_json(b'{"data": [{"order_amount": 1234.50, "order_id": 1}]}')
    frame = rows_to_frame(payload["data"], ORDER_SOURCE_COLUMNS, may_hold_bools=False)
    assert frame.row(0, named=True)["order_amount"] == "1234.50"
    assert frame.row(0, named=True)["order_id"] == "1"


@pytest.mark.parametrize("pagination", ["cursor", "next"])
def test_a_repeated_cursor_is_not_fetched_or_appended_twice(
    serve, orders: pl.DataFrame, pagination: str
) -> None:
    api = serve(pagination=pagination, repeat_cursor=True)
    source = make_source(api)

    assert_exactly(collect(source.extract_orders(DAY)), orders)
    assert len(api.data_requests()) == 11
    assert source.last_extract_stats()["repeated_pages_skipped"] == 1


def test_a_next_link_to_another_origin_is_refused(serve) -> None:
    api = serve(pagination="next", static_token=TOKEN)
    # The server's absolute next links point to 127.0.0.1; the client was given localhost.
    source = make_source(api, base_url=api.base_url.replace("127.0.0.1", "localhost"))
    with pytest.raises(ApiResponseError, match="another origin"):
        collect(source.extract_orders(DAY))
    assert len(api.data_requests()) == 1


# --------------------------------------------------------------------------- total


@pytest.mark.parametrize("total", ["total", "count", "header"])
def test_a_reported_total_that_matches_passes(serve, orders: pl.DataFrame, total: str) -> None:
    api = serve(total=total)
    source = make_source(api)
    assert_exactly(collect(source.extract_orders(DAY)), orders)
    assert source.last_extract_stats()["reported_total"] == orders.height


@pytest.mark.parametrize(("pagination", "offset"), [("cursor", 5), ("offset", -1), ("next", 1)])
def test_a_reported_total_mismatch_raises(serve, orders, pagination: str, offset: int) -> None:
    api = serve(pagination=pagination, total="total", total_offset=offset)
    with pytest.raises(ApiTotalMismatchError) as caught:
        collect(make_source(api).extract_orders(DAY))
    message = str(caught.value)
    assert f"total={orders.height + offset}" in message
    assert f"{orders.height} rows were extracted" in message
    assert caught.value.reported_total == orders.height + offset


# --------------------------------------------------------------------------- transient faults


@pytest.mark.parametrize(
    "fault",
    [
        Fault.http(500),
        Fault.http(502),
        Fault.http(503),
        Fault.http(504),
        Fault.http(429),
        Fault.drop_body(),
        Fault.drop_headers(),
    ],
    ids=["500", "502", "503", "504", "429", "drop-mid-body", "drop-before-response"],
)
def test_a_transient_fault_is_retried_without_loss_or_duplicates(
    serve, orders: pl.DataFrame, fault: Fault
) -> None:
    api = serve()
    api.schedule(fault, on=[3, 4, 7])  # twice in a row on page 3, once on page 5
    source = make_source(api)

    assert_exactly(collect(source.extract_orders(DAY)), orders)

    assert len(api.data_requests()) == 11 + 3
    assert len(retried_request_pairs(api)) == 3  # each faulted page re-requested identically
    assert source.last_extract_stats()["retries"] == 3


@pytest.mark.parametrize("pagination", ["cursor", "offset", "next"])
def test_mixed_faults_in_every_mode_give_exactly_the_dataset(
    serve, orders: pl.DataFrame, pagination: str
) -> None:
    api = serve(pagination=pagination, total="header")
    api.schedule(Fault.http(503, retry_after=0), on=[1])
    api.schedule(Fault.drop_body(), on=[3])
    api.schedule(Fault.http(500), on=[5])
    api.schedule(Fault.drop_headers(), on=[6])
    api.schedule(Fault.slow(1.0), on=[9])
    api.schedule(Fault.http(429, retry_after=0), on=[12])
    api.schedule(Fault.http(502), on=[15])

    source = make_source(api, timeout_seconds=0.4)
    assert_exactly(collect(source.extract_orders(DAY)), orders)
    assert source.last_extract_stats()["retries"] == 7


def test_a_slow_response_times_out_and_is_retried(serve, orders: pl.DataFrame) -> None:
    api = serve()
    api.schedule(Fault.slow(1.5), on=[2])
    source = make_source(api, timeout_seconds=0.3)

    assert_exactly(collect(source.extract_orders(DAY)), orders)
    requests = api.data_requests()
    assert [r.outcome for r in requests][:3] == ["200", "slow", "200"]
    # Gave up on the slow answer: the same page was asked again (server clock) before the
    # slow answer could have been complete.
    [(slow, retry)] = retried_request_pairs(api)
    assert retry is requests[2] and slow is requests[1]
    assert retry.started < slow.started + 1.5
    assert source.last_extract_stats()["retries"] == 1


def test_random_503s_at_a_high_rate_still_give_the_exact_dataset(serve, orders) -> None:
    api = serve(total="total")
    api.fail_rate(Fault.http(503), rate=0.3, seed=7)
    source = make_source(api, max_attempts=20, backoff_max_seconds=0.05)
    assert_exactly(collect(source.extract_orders(DAY)), orders)
    assert source.last_extract_stats()["retries"] > 0


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_is_waited(serve, orders: pl.DataFrame, status: int) -> None:
    api = serve()
    api.schedule(Fault.http(status, retry_after=1), on=[2])
    source = make_source(api)

    started = time.monotonic()
    assert_exactly(collect(source.extract_orders(DAY)), orders)
    assert time.monotonic() - started >= 1.0

    [(faulted, retry)] = retried_request_pairs(api)
    assert retry.started >= faulted.not_before
    assert source.last_extract_stats()["retry_wait_seconds"] >= 1.0


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_http_date_is_waited(serve, orders: pl.DataFrame, status: int) -> None:
    api = serve()
    api.schedule(Fault.http(status, retry_after=1, date=True), on=[2])

    started = time.monotonic()
    assert_exactly(collect(make_source(api).extract_orders(DAY)), orders)

    [(faulted, retry)] = retried_request_pairs(api)
    assert retry.started >= faulted.not_before  # not before the advertised date
    assert time.monotonic() - started >= faulted.not_before - faulted.started - 0.05


def test_gives_up_after_max_attempts_with_status_and_url(serve) -> None:
    api = serve(static_token=TOKEN)
    api.fail_rate(Fault.http(500), rate=1.0)
    source = make_source(api, max_attempts=3)

    with pytest.raises(ApiRetryError) as caught:
        collect(source.extract_orders(DAY))

    message = str(caught.value)
    assert "after 3 attempt(s)" in message and "max_attempts=3" in message
    assert "HTTP 500" in message
    assert f"{api.base_url}/orders?updated_since=2026-03-17T00:00:00Z" in message
    assert caught.value.last_status == 500 and caught.value.attempts == 3
    assert len(api.data_requests()) == 3
    assert_no_secret(caught.value, TOKEN)
    assert source.last_extract_stats()["retries"] == 2


def test_the_total_deadline_stops_retrying_early(serve) -> None:
    api = serve()
    api.fail_rate(Fault.http(503, retry_after=30), rate=1.0)
    source = make_source(api, deadline_seconds=1.0)

    started = time.monotonic()
    with pytest.raises(ApiDeadlineError, match="deadline"):
        collect(source.extract_orders(DAY))
    assert time.monotonic() - started < 30  # never slept the 30 s it could not afford
    assert len(api.data_requests()) == 1


# --------------------------------------------------------------------------- permanent errors


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_other_4xx_fail_fast_with_status_and_url_but_no_token(
    serve, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    caplog.set_level(logging.DEBUG)
    api = serve(static_token=TOKEN)
    api.schedule(Fault.http(status, echo=True), on=[2])  # the API even echoes the header

    with pytest.raises(ApiHTTPError) as caught:
        collect(make_source(api).extract_orders(DAY))

    error = caught.value
    message = str(error)
    assert error.status == status and f"HTTP {status}" in message
    assert f"{api.base_url}/orders?updated_since=2026-03-17T00:00:00Z" in message
    assert "cursor=" in message  # the full URL with its query, cursor included
    assert len(api.data_requests()) == 2  # page 1, then the failing page exactly once
    assert_no_secret(error, TOKEN)
    assert TOKEN not in caplog.text
    assert api.data_requests()[1].authorization == f"Bearer {TOKEN}"  # it was sent, though


def test_a_rejected_static_token_fails_fast(serve, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api = serve(static_token=TOKEN)
    source = make_source(api, token="wrong-" + TOKEN)

    with pytest.raises(ApiHTTPError) as caught:
        collect(source.extract_orders(DAY))

    assert caught.value.status == 401 and "static API token was rejected" in str(caught.value)
    assert len(api.data_requests()) == 1
    assert_no_secret(caught.value, TOKEN, "wrong-" + TOKEN)
    assert TOKEN not in caplog.text


def test_repr_of_the_resource_masks_secrets(serve) -> None:
    source = ApiSource(
        base_url="http://api.invalid",
        token=TOKEN,
        token_url="http://api.invalid/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    for text in (repr(source), str(source)):
        assert TOKEN not in text and CLIENT_SECRET not in text
        assert "***" in text
    assert source.name == "api"


# --------------------------------------------------------------------------- OAuth


def test_oauth_token_is_fetched_once_and_reused_across_pages(serve, orders) -> None:
    api = serve(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    source = make_source(api)

    assert_exactly(collect(source.extract_orders(DAY)), orders)
    assert_exactly(collect(source.extract_orders(DAY)), orders)  # and across extracts

    assert api.token_requests == 1
    assert len({r.authorization for r in api.data_requests()}) == 1
    assert all(r.outcome == "200" for r in api.data_requests())


def test_oauth_token_is_refreshed_shortly_before_expiry(serve, orders) -> None:
    # Tokens live 1 s; 11 pages at 5 req/s take 2 s: the client renews ahead of expiry.
    api = serve(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, token_lifetime=1.0)
    source = make_source(api, requests_per_second=5)

    assert_exactly(collect(source.extract_orders(DAY)), orders)

    assert api.token_requests >= 2
    assert all(r.outcome == "200" for r in api.data_requests())  # never sent an expired one
    assert source.last_extract_stats()["token_refreshes"] == 0


def test_oauth_token_is_refreshed_once_on_401_and_the_page_retried(serve, orders) -> None:
    # The server expires tokens after 0.5 s but advertises an hour: only a 401 tells.
    api = serve(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_lifetime=0.5,
        advertised_expires_in=3600,
    )
    source = make_source(api, requests_per_second=6)

    assert_exactly(collect(source.extract_orders(DAY)), orders)

    outcomes = [r.outcome for r in api.data_requests()]
    assert outcomes.count("401") >= 1
    assert api.token_requests == 1 + outcomes.count("401")
    assert source.last_extract_stats()["token_refreshes"] == outcomes.count("401")
    for i, record in enumerate(api.data_requests()):
        if record.outcome == "401":
            assert api.data_requests()[i + 1].query == record.query  # same page again


def test_oauth_revoked_token_recovers_mid_extract(serve, orders) -> None:
    api = serve(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    source = make_source(api)
    batches = source.extract_orders(DAY)
    got = [next(batches), next(batches)]
    api.revoke_tokens()
    got += list(batches)
    assert_exactly(pl.concat(got), orders)
    assert api.token_requests == 2


def test_oauth_bad_client_secret_fails_fast_without_leaking_it(
    serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = serve(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    wrong = "wrong-" + CLIENT_SECRET
    source = make_source(api, client_secret=wrong)

    with pytest.raises(ApiHTTPError) as caught:
        collect(source.extract_orders(DAY))

    assert caught.value.status == 401
    assert api.token_url in str(caught.value) and "OAuth token request" in str(caught.value)
    assert api.data_requests() == []
    assert_no_secret(caught.value, wrong, CLIENT_SECRET)
    assert wrong not in caplog.text and CLIENT_SECRET not in caplog.text


def test_secrets_never_reach_logs_or_errors_under_faults(
    serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = serve(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, token_lifetime=0.3,
                advertised_expires_in=3600)  # fmt: skip
    api.schedule(Fault.http(503, retry_after=0), on=[1])
    api.schedule(Fault.drop_body(), on=[2])
    api.fail_rate(Fault.http(500), rate=0.0)
    source = make_source(api, requests_per_second=8)
    collect(source.extract_orders(DAY))
    api.schedule(Fault.http(403, echo=True), on=[len(api.data_requests()) + 2])

    with pytest.raises(ApiHTTPError) as caught:
        collect(source.extract_orders(DAY))

    issued = {r.authorization.removeprefix("Bearer ") for r in api.data_requests()}
    assert len(issued) >= 2
    for secret in (CLIENT_SECRET, *issued):
        assert secret not in caplog.text
        assert_no_secret(caught.value, secret)
    assert "***" in str(caught.value)  # the echoed credentials were redacted
    assert str(source.last_extract_stats()).count("tok-") == 0


# --------------------------------------------------------------------------- rate limits


def test_the_client_side_rate_limit_spaces_requests(serve, orders: pl.DataFrame) -> None:
    api = serve()
    source = make_source(api, page_size=258, requests_per_second=5)  # 10 pages

    started = time.monotonic()
    assert_exactly(collect(source.extract_orders(DAY)), orders)
    elapsed = time.monotonic() - started

    starts = [r.started for r in api.data_requests()]
    assert len(starts) == 10
    assert elapsed >= 1.8
    # Server-side gaps are not asserted one by one: a request that reached the server late
    # makes the next gap look short on a loaded machine. The span is what the limit bounds.
    assert starts[-1] - starts[0] >= 9 * 0.2 - 0.1
    assert source.last_extract_stats()["rate_limit_waits_seconds"] >= 1.0


def test_the_rate_limit_is_shared_by_every_caller_of_one_api(serve) -> None:
    api = serve()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            collect(make_source(api, page_size=1000, requests_per_second=10).extract_orders(DAY))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not errors
    starts = sorted(r.started for r in api.data_requests())
    assert len(starts) == 6  # 3 pages each
    # Two callers with a limiter each would take ~0.2 s; one shared limiter spaces all six.
    assert starts[-1] - starts[0] >= 0.45


@pytest.mark.parametrize("reset", ["delta", "epoch"])
def test_x_ratelimit_headers_slow_the_client_before_the_limit(
    serve, orders: pl.DataFrame, reset: str
) -> None:
    api = serve(rate_limit=RateLimit(limit=3, window=1.0, reset=reset))
    source = make_source(api, page_size=650)  # 4 pages, more than one window's worth

    started = time.monotonic()
    assert_exactly(collect(source.extract_orders(DAY)), orders)

    assert api.rate_limit_violations == 0  # never hit the limit: no 429 at all
    assert [r.outcome for r in api.data_requests()] == ["200"] * 4
    assert time.monotonic() - started >= 0.9
    assert source.last_extract_stats()["rate_limit_waits_seconds"] >= 0.9


# --------------------------------------------------------------------------- config, helpers


def test_invalid_configuration_is_reported_clearly() -> None:
    with pytest.raises(ApiSourceError, match="page_size must be >= 1"):
        next(ApiSource(base_url="http://api.invalid", page_size=0).extract_orders(DAY))
    with pytest.raises(ApiSourceError, match="missing: client_id, client_secret"):
        next(ApiSource(base_url="http://api.invalid", token_url="http://x/t").extract_orders(DAY))
    with pytest.raises(ApiSourceError, match="base_url must be an http"):
        next(ApiSource(base_url="api.invalid").extract_orders(DAY))
    with pytest.raises(ValueError, match="pagination"):
        ApiSource(base_url="http://api.invalid", pagination="pages")


def test_retry_after_and_rate_limit_reset_parsing() -> None:
    now = 1_773_705_600.0  # 2026-03-17T00:00:00Z
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("Tue, 17 Mar 2026 00:00:05 GMT", now_epoch=now) == 5.0
    assert parse_retry_after("Mon, 16 Mar 2026 23:00:00 GMT", now_epoch=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert parse_rate_limit_reset("30", now_epoch=now) == 30.0
    assert parse_rate_limit_reset(str(int(now) + 12), now_epoch=now) == 12.0
    assert parse_rate_limit_reset(str(int(now * 1000) + 1500), now_epoch=now) == 1.5
    assert parse_rate_limit_reset("x", now_epoch=now) is None


def test_works_as_a_dagster_resource_with_env_var_secrets(
    serve, orders: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import EnvVar, asset, materialize

    api = serve(static_token=TOKEN)
    monkeypatch.setenv("ORDERS_API_TOKEN", TOKEN)

    @asset
    def extracted(source: RawSource) -> int:
        return collect(source.extract_orders(DAY)).height

    result = materialize(
        [extracted],
        resources={
            "source": ApiSource(
                base_url=api.base_url, token=EnvVar("ORDERS_API_TOKEN"), page_size=1000
            )
        },
    )
    assert result.success and result.output_for_node("extracted") == orders.height


def test_oauth_401_twice_fails_fast_instead_of_looping(serve) -> None:
    api = serve(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, token_lifetime=0.0)
    with pytest.raises(ApiHTTPError) as caught:
        collect(make_source(api).extract_orders(DAY))
    assert caught.value.status == 401 and "freshly issued OAuth token" in str(caught.value)
    assert [r.outcome for r in api.data_requests()] == ["401", "401"]  # one refresh, no more
    assert api.token_requests == 2


def test_a_bad_setting_fails_at_resource_init_before_any_request(serve) -> None:
    from dagster import DagsterResourceFunctionError, asset, materialize

    api = serve()

    @asset
    def extracted(source: RawSource) -> int:  # pragma: no cover - never runs
        return collect(source.extract_orders(DAY)).height

    with pytest.raises(DagsterResourceFunctionError) as caught:
        materialize([extracted], resources={"source": make_source(api, page_size=0)})
    assert "page_size must be >= 1" in str(caught.value.__cause__)
    assert api.data_requests() == []
