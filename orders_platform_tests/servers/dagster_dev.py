"""`dagster dev` in its own process group, for the e2e tests and the backfill benchmark.

It gets its own DAGSTER_HOME (a copy of the repo's dagster.yaml), lake and DuckDB file
under a temporary directory, and is stopped by its process group id, never by name:
started with `&` from a shell it would ignore SIGTERM.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from orders_platform.ops.backfill import BackfillError, list_assets

REPO_ROOT = Path(__file__).resolve().parents[2]
# Every asset of the default definitions, as the webserver names them ("raw/orders").
PLATFORM_ASSETS = frozenset(
    "/".join(path)
    for path in (
        ["raw", "orders"],
        ["validated", "orders"],
        ["validated", "rejected_orders"],
        ["silver", "orders"],
        ["raw", "events"],
        ["validated", "rejected_events"],
        ["silver", "sessions"],
    )
)
STARTUP_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class DagsterDev:
    """A `dagster dev` (webserver, daemon, code server, runs) rooted at `tmp`."""

    tmp: Path
    settings: Mapping[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    _log: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / "dagster.yaml", self.home / "dagster.yaml")

    @property
    def home(self) -> Path:
        return self.tmp / "dagster_home"

    @property
    def lake(self) -> Path:
        return self.tmp / "lake"

    @property
    def duckdb_path(self) -> Path:
        return self.tmp / "warehouse.duckdb"

    @property
    def log_path(self) -> Path:
        return self.tmp / "dagster_dev.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ORDERS_", "SNOWFLAKE_", "AWS_", "DAGSTER_"))
        }
        env.update(
            DAGSTER_HOME=str(self.home),
            ORDERS_LAKE_ROOT=str(self.lake),
            ORDERS_DUCKDB_PATH=str(self.duckdb_path),
            PYTHONUNBUFFERED="1",
            **self.settings,
        )
        return env

    def start(self) -> None:
        dagster = Path(sys.executable).with_name("dagster")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=REPO_ROOT,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, chars: int = 6000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "<no log>"
        return text[-chars:]

    def wait_ready(self, assets: Iterable[str], timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Until the webserver answers and the code location serves `assets`."""
        assert self.proc is not None
        wanted = set(assets)
        deadline = time.monotonic() + timeout_s
        stage = "webserver"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"dagster dev exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                if stage == "webserver":
                    response = httpx.get(f"{self.url}/server_info", timeout=5.0)
                    if response.status_code == 200:
                        stage = "assets"
                        continue
                elif {a["key"] for a in list_assets(self.url, timeout=10.0)} >= wanted:
                    return
            except (httpx.HTTPError, BackfillError):
                pass
            time.sleep(1.0)
        raise RuntimeError(
            f"dagster dev not ready ({stage}) after {timeout_s} s:\n{self.log_tail()}"
        )

    def process_ids(self) -> list[int]:
        """Every live process of the group (webserver, daemon, code servers, runs)."""
        if self.proc is None:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.getpgid(int(entry.name)) == self.proc.pid:
                    pids.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
        return pids

    def stop(self) -> None:
        """SIGTERM the whole process group, then SIGKILL whatever is left after 30 s."""
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the group id is the leader's pid
        try:
            if _group_alive(pgid):
                os.killpg(pgid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while time.monotonic() < deadline:
                if self.proc.poll() is not None and not _group_alive(pgid):
                    break
                time.sleep(0.2)
            if _group_alive(pgid):
                os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        finally:
            self.proc = None
            if self._log is not None:
                self._log.close()
                self._log = None
