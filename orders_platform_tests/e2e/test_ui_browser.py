"""The Dagster UI as a person uses it, clicked in headless Chromium against `dagster dev`.

One `dagster dev` (own DAGSTER_HOME, lake and DuckDB file, small demo days) serves the
module; the blocking-check flow gets a second one whose reject-rate check is an ERROR with
a tiny threshold. Pages are driven by roles and visible text, never by GraphQL; each test
saves a screenshot (see browser.py for where). The tests run in file order: the asset
pages test reads the day the launch test materialized.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from orders_platform_tests.e2e.browser import (
    CHROMIUM_ARGS,
    VIEWPORT,
    body_text,
    chromium_path,
    screenshot_dir,
    skip_community_dialog,
    wait_for_page_text,
)
from orders_platform_tests.servers.dagster_dev import PLATFORM_ASSETS, DagsterDev

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

DAY = "2026-03-17"
BACKFILL_DAYS = ("2026-03-20", "2026-03-22")
SMALL_DAYS = {
    "ORDERS_DEMO_ORDERS_PER_DAY": "500",
    "ORDERS_DEMO_EVENTS_PER_DAY": "2000",
    "ORDERS_SOURCE_MAX_RETRIES": "0",
}
RUN_TIMEOUT_S = 180
BACKFILL_TIMEOUT_S = 300
ORDERS_CHAIN = ["raw/orders", "validated/orders", "validated/rejected_orders", "silver/orders"]


def _start(tmp: Path, **settings: str) -> DagsterDev:
    server = DagsterDev(tmp, settings={**SMALL_DAYS, **settings})
    server.start()
    try:
        server.wait_ready(PLATFORM_ASSETS)
    except RuntimeError as exc:
        server.stop()
        pytest.fail(str(exc))
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[DagsterDev]:
    dev = _start(tmp_path_factory.mktemp("ui"))
    try:
        yield dev
    finally:
        dev.stop()


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    if path is None:
        pytest.fail("chromium is not installed (.ci/run installs Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, request):
    """A fresh page; fails the test on any uncaught page error; saves a screenshot."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    skip_community_dialog(page)
    yield page
    name = getattr(request.node, "screenshot_name", request.node.name)
    path = screenshot_dir() / f"{name}.png"
    try:
        page.screenshot(path=str(path))
        print(f"screenshot: {path}")
    finally:
        context.close()
    assert not errors, f"page errors: {errors}"


_GREETED: set[str] = set()


def open_graph(page, url: str) -> None:
    page.goto(f"{url}/asset-groups")
    page.get_by_role("button", name=re.compile("Materialize")).wait_for()
    if url not in _GREETED:
        # the first visit of an instance is greeted by a dialog a moment after the page
        # loads; let it come (and be skipped) before opening menus it would close
        greeting = page.get_by_text("Join the Dagster community")
        with contextlib.suppress(PlaywrightTimeout):
            greeting.wait_for(timeout=8000)
            page.get_by_role("button", name="Skip").click()
            greeting.wait_for(state="hidden")
        _GREETED.add(url)


def filter_graph(page, query: str) -> None:
    """Type an asset selection into the graph's search box (a code editor)."""
    page.get_by_label("Search and filter assets").focus()
    page.keyboard.type(query)
    page.keyboard.press("Enter")


def open_partition_dialog(page, expected_assets: int):
    """*Materialize all…* on the (filtered) graph; the dialog, once it targets the graph's
    `expected_assets` (the filter applies after a short debounce: reopen until it has)."""
    title = f"Launch runs to materialize {expected_assets} assets"
    for _ in range(10):
        page.get_by_role("button", name=re.compile("Materialize all")).click()
        dialog = page.get_by_role("dialog")
        dialog.wait_for()
        if dialog.get_by_text(title).count():
            return dialog
        dialog.get_by_role("button", name="Cancel").click()
        page.wait_for_timeout(500)
    raise AssertionError(f"the dialog never said {title!r}:\n{body_text(page)[:2000]}")


def choose_partitions(dialog, text: str) -> None:
    """Type partitions as a person does: a day, or a [start...end] range."""
    # the dialog starts on the last 90 days; the demo days are older
    dialog.get_by_text("Show all partitions").click()
    box = dialog.get_by_role("textbox").first
    box.fill(text)
    box.press("Enter")


def launch_orders_chain(page, url: str, day: str) -> None:
    open_graph(page, url)
    filter_graph(page, 'key:"*orders"')  # raw, validated (+ dead letters), silver
    dialog = open_partition_dialog(page, expected_assets=len(ORDERS_CHAIN))
    choose_partitions(dialog, day)
    dialog.get_by_role("button", name="Launch 1 run").click()
    dialog.wait_for(state="hidden")


def wait_for_latest_run(page, url: str, status: str) -> str:
    """The Runs page until the newest run of `day` shows `status`; the page text."""
    page.goto(f"{url}/runs")
    other = "Failure" if status == "Success" else "Success"
    return wait_for_page_text(
        page, rf"partition: {DAY}[\s\S]*?\b{status}\b", RUN_TIMEOUT_S, fail_on=rf"\b{other}\b"
    )


# ------------------------------------------------------------------------------ flows


def test_asset_graph_shows_the_three_groups_and_seven_assets(server, page, request):
    request.node.screenshot_name = "01-asset-graph"
    open_graph(page, server.url)
    for group in ("raw", "validated", "silver"):
        assert page.get_by_text(group, exact=True).count() >= 1, group
    page.get_by_label("settings").last.click()
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.keyboard.press("Escape")
    # raw/orders, validated/orders, silver/orders: three nodes named "orders"
    names = {"orders": 3, "events": 1, "rejected_orders": 1, "rejected_events": 1, "sessions": 1}
    for name, count in names.items():
        nodes = page.get_by_text(name, exact=True)
        nodes.first.wait_for()
        assert nodes.count() == count, (name, nodes.count())
    assert sum(names.values()) == len(PLATFORM_ASSETS) == 7


def test_materialize_one_day_of_the_orders_chain(server, page, request):
    request.node.screenshot_name = "02-silver-orders-partition"
    launch_orders_chain(page, server.url, DAY)
    text = wait_for_latest_run(page, server.url, "Success")
    assert f"partition: {DAY}" in text

    # silver/orders of that day: rows in, inserted/updated, the schema and a preview
    page.goto(f"{server.url}/assets/silver/orders?view=partitions&partition={DAY}")
    text = wait_for_page_text(page, r"rows_in[\s\S]*inserted", 60)
    for label in ("Materialized", "rows_in", "inserted", "updated", "unchanged", "silver.orders"):
        assert label in text, label
    inserted = int(re.search(r"inserted\s+(\d+)", text).group(1))
    assert inserted > 0
    page.get_by_text("[Show Table Schema]").first.click()
    schema = page.get_by_role("dialog")
    for column in ("order_id", "total_value", "order_tier", "delivery_minutes"):
        expect(schema.get_by_text(column, exact=True).first).to_be_visible()
    expect(schema.get_by_text("premium if order_amount >= 2000").first).to_be_visible()
    page.keyboard.press("Escape")
    schema.wait_for(state="hidden")
    page.get_by_text("[Show Markdown]").first.click()
    preview = page.get_by_role("dialog")
    expect(preview.get_by_role("columnheader", name="order_id").first).to_be_visible()
    page.keyboard.press("Escape")


def test_validated_orders_shows_rejections_by_reason_and_passed_checks(server, page, request):
    request.node.screenshot_name = "03-validated-orders-checks"
    page.goto(f"{server.url}/assets/validated/orders?view=partitions&partition={DAY}")
    text = wait_for_page_text(page, r"rows_rejected", 60)
    rejected = int(re.search(r"rows_rejected\s+(\d+)", text).group(1))
    assert rejected > 0
    for label in ("reject_rate", "rejected_by_reason", "summary", "duplicates_collapsed"):
        assert label in text, label
    # the Markdown summary: rejected rows by reason as a table
    page.get_by_text("[Show Markdown]").first.click()
    summary = page.get_by_role("dialog")
    expect(summary.get_by_role("columnheader", name="reason").first).to_be_visible()
    expect(summary.get_by_text(DAY).first).to_be_visible()
    assert summary.get_by_role("row").count() >= 2  # header + at least one reason
    page.keyboard.press("Escape")

    page.get_by_role("tab", name="Checks").click()
    text = wait_for_page_text(page, r"reject_rate", 60)
    for check in ("orders_reconciliation", "reject_rate", "validated_orders_schema"):
        assert check in text, check
    assert text.count("Succeeded") >= 3, text[:2000]
    assert "Failed" not in text
    assert "Passed" in text


def test_materialize_all_backfill_over_three_days_completes(server, page, request):
    request.node.screenshot_name = "04-backfill"
    open_graph(page, server.url)
    dialog = open_partition_dialog(page, expected_assets=len(PLATFORM_ASSETS))
    choose_partitions(dialog, f"[{BACKFILL_DAYS[0]}...{BACKFILL_DAYS[1]}]")
    dialog.get_by_role("button", name="Launch backfill").click()
    dialog.wait_for(state="hidden")

    page.get_by_role("link", name="Runs").first.click()
    page.get_by_text("Backfills", exact=True).click()
    backfill = page.get_by_role("link").filter(has_text=re.compile(r"^[a-z]{8}$")).first
    backfill.click()
    page.wait_for_url(re.compile(r"/runs/b/[a-z]{8}"))
    text = wait_for_page_text(
        page, r"Status\s+Succeeded", BACKFILL_TIMEOUT_S, fail_on=r"Status\s+(Failed|Canceled)"
    )
    assert f"{BACKFILL_DAYS[0]}...{BACKFILL_DAYS[1]}"[2:] in text
    # every asset of the graph, 100% completed; sessions span one more day on each side
    rows = re.findall(r"(\w+ / \w+)\n\1\n100% completed\n(\d+)\n0\n(\d+)\n0", text)
    assert {asset.replace(" / ", "/") for asset, _, _ in rows} == PLATFORM_ASSETS, text[:3000]
    for asset, targeted, succeeded in rows:
        assert targeted == succeeded == ("5" if asset == "silver / sessions" else "3"), asset


def test_automation_lists_the_schedule_and_sensors_running(server, page, request):
    request.node.screenshot_name = "05-automation"
    page.goto(f"{server.url}/overview")
    page.get_by_role("link", name="Automation").first.click()
    names = [
        "orders_daily_schedule",
        "orders_intraday_schedule",
        "silver_orders_sensor",
        "silver_sessions_sensor",
        "run_failure_alert_sensor",
    ]
    for name in names:
        page.get_by_text(name, exact=True).wait_for()
    # each row has a selection box (unchecked) and a running toggle (checked)
    expect(page.get_by_role("checkbox", checked=True)).to_have_count(len(names))


@pytest.fixture
def strict_server(tmp_path) -> Iterator[DagsterDev]:
    """Reject-rate check as an ERROR with a threshold every demo day exceeds."""
    dev = _start(tmp_path, ORDERS_REJECT_RATE_SEVERITY="ERROR", ORDERS_MAX_REJECT_RATE="0.001")
    try:
        yield dev
    finally:
        dev.stop()


def test_a_failed_blocking_check_stops_silver_for_that_day(strict_server, page, request):
    request.node.screenshot_name = "06-blocked-by-reject-rate"
    url = strict_server.url
    launch_orders_chain(page, url, DAY)
    wait_for_latest_run(page, url, "Failure")

    # silver/orders of that day was never written: the check blocked it
    page.goto(f"{url}/assets/silver/orders?view=partitions&partition={DAY}")
    text = wait_for_page_text(page, r"Materialized \(\d+\)", 60)
    assert "Materialized (0)" in text, text[:2000]
    expect(page.get_by_text("No metadata entries")).to_be_visible()

    # the failed check, its severity and why: the rate against the threshold, top reasons
    page.goto(f"{url}/assets/validated/orders?view=checks")
    wait_for_page_text(page, r"reject_rate[\s\S]*Failed", 60)
    page.get_by_text("reject_rate", exact=True).first.click()
    text = wait_for_page_text(page, r"top_reasons", 30, reload=False)
    for label in ("Failed", "reject_rate", "max_reject_rate", "0.001", "top_reasons"):
        assert label in text, label
    assert "ERROR blocks silver" in text, text[:2000]
