"""Benchmark harness for the peer Fides 2.86.2 (Ethyca): per-request speed of access and erasure privacy
requests against the demo app database (examples/weiliaoke_app) in PostgreSQL.

Run with the Fides venv (bench/peers/setup_fides.sh creates it):

    bench/.venv-fides/bin/python bench/peers/fides_rights.py \
        --db-url postgresql://postgres@127.0.0.1:5432/wlk_bench \
        --access-ids 1,2,3 --erasure-ids 4,5,6 --queued-ids 7,8,9 --out /tmp/fides.json

or with --ids-file FILE holding {"access": [...], "erasure": [...], "queued": [...]}.

What it does (details in bench/peers/FIDES.md): drops and recreates a Fides application database on the same
PostgreSQL server, starts the Fides webserver (uvicorn, 127.0.0.1, a free port, one process) with Celery
task_always_eager (privacy requests run in process through Fides's normal pipeline: request -> DSR 3.0 graph
traversal -> postgres connector), configures a postgres connection, the dataset in fides_dataset.yml, an access
and an erasure policy, then times requests: sequential access, sequential erasure (verified by reading the demo
DB back), and a queued batch of access requests. The server is always stopped at the end; every loop is bounded
in count and time. Progress goes to stderr; the result JSON to --out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import psycopg2
import psycopg2.extensions
import yaml

FIDES_VERSION = "2.86.2"
HERE = Path(__file__).resolve().parent
DATASET_FILE = HERE / "fides_dataset.yml"
CONNECTION_KEY = "wlk_postgres"
DATASET_KEY = "wlk_app"
ACCESS_POLICY = "wlk_access"
ERASURE_POLICY = "wlk_erasure"
STORAGE_KEY = "wlk_local_json"
IDENTITY = "agent_phone"  # custom identity: Fides's phone_number must be E.164 (+86...), the DB holds 11 digits
CLIENT_ID = "wlkbenchroot"
CLIENT_SECRET = "wlk-bench-root-secret-not-for-prod"
APP_ENCRYPTION_KEY = "wlkbench-fides-app-key-32-chars!"  # exactly 32 characters
REDIS_DB = 9  # the only Redis index this harness may use
TERMINAL = {
    "complete",
    "error",
    "canceled",
    "denied",
    "requires_manual_finalization",
    "requires_input",
    "paused",
    "pending_external",
    "duplicate",
    "identity_unverified",
    "awaiting_email_send",
    "pre_approval_not_eligible",
}
BATCH = 50  # Fides's BULK_PRIVACY_REQUEST_BATCH_SIZE: at most 50 requests per POST

# The agent's PI columns per table, as examples/weiliaoke_app/datamap.yaml lists them, and how each row is
# reached from the agent id (for the read-back after erasure).
PI_COLUMNS: dict[str, list[str]] = {
    "agents": ["phone", "name", "id_number", "face_verify_result", "face_ref", "bank_card", "bank_reserved_phone", "avatar_url"],
    "property_bindings": [
        "property_id",
        "real_name",
        "id_number",
        "contact_phone",
        "business_card_url",
        "work_badge_url",
        "id_card_photo_url",
        "status",
        "created_at",
    ],
    "posts": ["body", "photo_urls", "created_at"],
    "reviews": ["rating", "body", "photo_urls", "created_at"],
    "chat_messages": ["body", "lat", "lng", "sent_at"],
    "orders": [
        "order_no",
        "product_name",
        "quantity",
        "amount",
        "pay_channel",
        "pay_card",
        "consignee_name",
        "consignee_phone",
        "consignee_address",
        "status",
        "created_at",
        "paid_at",
    ],
    "invoices": ["title_type", "title", "tax_no", "amount", "issued_at"],
    "devices": ["device_id", "imei", "oaid"],
    "login_logs": ["ip", "device_id", "logged_in_at"],
    "prize_records": ["winner_name", "phone", "address", "id_number"],
    "customers": ["name", "phone"],  # other people's PI: not in the Fides dataset (datamap: customer subject)
}
ROWS_OF_AGENTS = {t: f"SELECT id, {{cols}} FROM {t} WHERE agent_id = ANY(%s) ORDER BY id" for t in PI_COLUMNS}
ROWS_OF_AGENTS["agents"] = "SELECT id, {cols} FROM agents WHERE id = ANY(%s) ORDER BY id"
ROWS_OF_AGENTS["invoices"] = (
    "SELECT i.id, {cols} FROM invoices i JOIN orders o ON o.id = i.order_id WHERE o.agent_id = ANY(%s) ORDER BY i.id"
)


def log(msg: str) -> None:
    print(f"[fides {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- arguments


def parse_ids(text: str | None) -> list[int]:
    if not text:
        return []
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db-url", required=True, help="demo app DB, e.g. postgresql://postgres@127.0.0.1:5432/wlk_bench")
    p.add_argument("--access-ids", help="agent ids for sequential access requests (1,2,3 or 1-10)")
    p.add_argument("--erasure-ids", help="agent ids for sequential erasure requests")
    p.add_argument("--queued-ids", help="agent ids for the queued batch of access requests")
    p.add_argument("--ids-file", help='JSON {"access": [...], "erasure": [...], "queued": [...]}')
    p.add_argument("--out", required=True, help="result JSON file")
    p.add_argument("--app-db", default="fides_app_bench", help="Fides application DB (dropped and recreated)")
    p.add_argument("--keep-app-db", action="store_true", help="do not drop the Fides application DB at the end")
    p.add_argument(
        "--keep-workdir",
        action="store_true",
        help="keep the temp working dir (server logs, access packages with PI); kept anyway on error",
    )
    p.add_argument("--dataset", default=str(DATASET_FILE), help="fideslang dataset YAML (default: fides_dataset.yml)")
    p.add_argument("--timeout", type=float, default=1800.0, help="cap on the queued phase's wait, seconds")
    p.add_argument("--request-timeout", type=float, default=600.0, help="cap on one sequential request, seconds")
    p.add_argument("--startup-timeout", type=float, default=300.0, help="cap on the Fides server start, seconds")
    p.add_argument("--poll-interval", type=float, default=0.05, help="status polling interval, seconds")
    p.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed access requests (for the first access or queued id) before the timed phases",
    )
    p.add_argument("--log-level", default="INFO", help="Fides server log level (FIDES__LOGGING__LEVEL)")
    p.add_argument(
        "--celery-workers",
        type=int,
        default=0,
        help="0 (default): Celery task_always_eager, requests run inside the webserver; N > 0: "
        "task_always_eager=false and one `fides worker` process (Celery prefork, concurrency N) "
        "with Redis DB 9 as broker",
    )
    args = p.parse_args(argv)
    args.access, args.erasure, args.queued = (parse_ids(args.access_ids), parse_ids(args.erasure_ids), parse_ids(args.queued_ids))
    if args.ids_file:
        data = json.loads(Path(args.ids_file).read_text())
        args.access += [int(i) for i in data.get("access", [])]
        args.erasure += [int(i) for i in data.get("erasure", [])]
        args.queued += [int(i) for i in data.get("queued", [])]
    overlap = set(args.erasure) & (set(args.access) | set(args.queued))
    if overlap:
        p.error(f"erasure ids must not also be access/queued ids (erasure runs before queued): {sorted(overlap)[:10]}")
    return args


# ---------------------------------------------------------------------------------------------- postgres


def pg_params(url: str) -> dict[str, Any]:
    u = urlsplit(url)
    if not u.scheme.startswith("postgres"):
        raise SystemExit(f"--db-url must be a postgresql:// URL, got {url!r}")
    return {
        "host": u.hostname or "127.0.0.1",
        "port": u.port or 5432,
        "user": unquote(u.username or "postgres"),
        "password": unquote(u.password or ""),
        "dbname": (u.path or "/").lstrip("/") or "postgres",
    }


def pg_connect(params: dict[str, Any], dbname: str | None = None) -> psycopg2.extensions.connection:
    kw = dict(params)
    if dbname:
        kw["dbname"] = dbname
    if not kw["password"]:
        kw.pop("password")
    conn = psycopg2.connect(connect_timeout=10, **kw)
    conn.autocommit = True
    return conn


def recreate_app_db(params: dict[str, Any], name: str, drop_only: bool = False) -> None:
    conn = pg_connect(params, "postgres")
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if not drop_only:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def agent_phones(conn: psycopg2.extensions.connection, ids: list[int]) -> dict[int, str | None]:
    with conn.cursor() as cur:
        cur.execute("SELECT id, phone FROM agents WHERE id = ANY(%s)", (ids,))
        found = dict(cur.fetchall())
    return {i: found.get(i) for i in ids}


def snapshot(conn: psycopg2.extensions.connection, ids: list[int]) -> dict[str, dict[int, tuple]]:
    snap: dict[str, dict[int, tuple]] = {}
    with conn.cursor() as cur:
        for table, cols in PI_COLUMNS.items():
            prefix = "i." if table == "invoices" else ""
            cur.execute(ROWS_OF_AGENTS[table].format(cols=", ".join(prefix + c for c in cols)), (ids,))
            snap[table] = {row[0]: tuple(row[1:]) for row in cur.fetchall()}
    return snap


def compare(before: dict[str, dict[int, tuple]], after: dict[str, dict[int, tuple]]) -> dict[str, Any]:
    """Per table and PI column: how many of the erased agents' values were nulled, rewritten or left as they were."""
    out: dict[str, Any] = {}
    for table, cols in PI_COLUMNS.items():
        b, a = before[table], after[table]
        cols_out = {}
        for k, col in enumerate(cols):
            had = left = nulled = rewritten = 0
            for rid, row in b.items():
                if row[k] is None:
                    continue
                had += 1
                if rid not in a:
                    continue
                new = a[rid][k]
                if new is None:
                    nulled += 1
                elif new == row[k]:
                    left += 1
                else:
                    rewritten += 1
            cols_out[col] = {"had_value": had, "left": left, "nulled": nulled, "rewritten": rewritten}
        out[table] = {
            "rows_before": len(b),
            "rows_after": len(a),
            "rows_deleted": len(set(b) - set(a)),
            "pi_values_left": sum(c["left"] for c in cols_out.values()),
            "pi_values_erased": sum(c["nulled"] + c["rewritten"] for c in cols_out.values()),
            "columns": cols_out,
        }
    return out


# ---------------------------------------------------------------------------------------------- server


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM if the harness dies, even by SIGKILL (Linux prctl PR_SET_PDEATHSIG)."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo and len(pids) < 1000:
        p = todo.pop()
        pids.append(p)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split())
    return pids


def vm_hwm_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    """Keeps the peak VmHWM seen for each process of the server's tree (children that exit early still count)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak = pid, {}
        self.roots = [pid]
        self.stop_event = threading.Event()

    def sample(self) -> None:
        for root in list(self.roots):
            for p in process_tree(root):
                hwm = vm_hwm_kib(p)
                if hwm:
                    self.peak[p] = max(self.peak.get(p, 0), hwm)

    def run(self) -> None:
        while not self.stop_event.wait(0.5):
            self.sample()

    def result(self) -> dict[str, Any]:
        self.sample()
        return {
            "peak_rss_mib": round(sum(self.peak.values()) / 1024, 1),
            "server_rss_mib": round(self.peak.get(self.pid, 0) / 1024, 1),
            "processes": len(self.peak),
            "rss_note": "sum over the server's (and worker's) process tree of each process's VmHWM",
        }


def fides_env(pg: dict[str, Any], app_db: str, log_level: str, workers: int = 0) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIDES__")}
    redis_url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    env.update(
        {
            "FIDES__DATABASE__SERVER": str(pg["host"]),
            "FIDES__DATABASE__PORT": str(pg["port"]),
            "FIDES__DATABASE__USER": str(pg["user"]),
            "FIDES__DATABASE__PASSWORD": str(pg["password"]),
            "FIDES__DATABASE__DB": app_db,
            "FIDES__DATABASE__AUTOMIGRATE": "true",
            "FIDES__REDIS__HOST": "127.0.0.1",
            "FIDES__REDIS__PORT": "6379",
            "FIDES__REDIS__PASSWORD": "",
            "FIDES__REDIS__DB_INDEX": str(REDIS_DB),
            "FIDES__REDIS__TEST_DB_INDEX": str(REDIS_DB),
            "FIDES__CELERY__TASK_ALWAYS_EAGER": "false" if workers else "true",
            "FIDES__CELERY__WORKER_CONCURRENCY": str(max(1, workers)),
            "FIDES__CELERY__BROKER_URL": redis_url,
            "FIDES__CELERY__RESULT_BACKEND": redis_url,
            "FIDES__SECURITY__APP_ENCRYPTION_KEY": APP_ENCRYPTION_KEY,
            "FIDES__SECURITY__OAUTH_ROOT_CLIENT_ID": CLIENT_ID,
            "FIDES__SECURITY__OAUTH_ROOT_CLIENT_SECRET": CLIENT_SECRET,
            "FIDES__SECURITY__ENV": "prod",
            "FIDES__EXECUTION__REQUIRE_MANUAL_REQUEST_APPROVAL": "false",
            "FIDES__EXECUTION__SUBJECT_IDENTITY_VERIFICATION_REQUIRED": "false",
            "FIDES__EXECUTION__TASK_RETRY_COUNT": "0",
            "FIDES__USER__ANALYTICS_OPT_OUT": "true",
            "FIDES__LOGGING__LEVEL": log_level,
            "FIDES__LOGGING__COLORIZE": "false",
            "FIDES__CONSENT__TCF_ENABLED": "false",
        }
    )
    return env


def flush_redis_db() -> None:
    import redis  # a Fides dependency

    r = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_timeout=10)
    try:
        r.flushdb()
    finally:
        r.close()


@contextlib.contextmanager
def fides_server(env: dict[str, str], workdir: Path, startup_timeout: float) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    port = free_port()
    logfile = workdir / "fides-server.log"
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "fides.api.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    log(f"starting Fides webserver on 127.0.0.1:{port} (log: {logfile})")
    proc = _spawn(cmd, workdir, env, logfile)
    base = f"http://127.0.0.1:{port}"
    try:
        t0 = time.monotonic()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"Fides server exited with {proc.returncode} during start; see {logfile}:\n"
                    + logfile.read_text(errors="replace")[-3000:]
                )
            if time.monotonic() - t0 > startup_timeout:
                raise RuntimeError(f"Fides server not healthy after {startup_timeout:.0f}s; see {logfile}")
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.get(f"{base}/health", timeout=5)
                if r.status_code == 200:
                    break
            time.sleep(0.5)
        log(f"Fides healthy after {time.monotonic() - t0:.1f}s: {r.text[:200]}")
        yield base, proc, logfile
    finally:
        stop_process(proc)


def _spawn(cmd: list[str], workdir: Path, env: dict[str, str], logfile: Path) -> subprocess.Popen:
    """A Fides process in its own session, logging to ``logfile``, that dies with the harness."""
    with open(logfile, "wb") as fh:
        return subprocess.Popen(cmd, cwd=workdir, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)


@contextlib.contextmanager
def fides_worker(env: dict[str, str], workdir: Path, startup_timeout: float) -> Iterator[subprocess.Popen]:
    """`fides worker` (all queues), started in-process via fides.api.worker.start_worker."""
    logfile = workdir / "fides-worker.log"
    cmd = [sys.executable, "-c", "from fides.api.worker import start_worker; start_worker()"]
    log(f"starting Fides Celery worker, concurrency {env['FIDES__CELERY__WORKER_CONCURRENCY']} (log: {logfile})")
    proc = _spawn(cmd, workdir, env, logfile)
    try:
        t0 = time.monotonic()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"Fides worker exited with {proc.returncode}; see {logfile}:\n" + logfile.read_text(errors="replace")[-3000:]
                )
            if time.monotonic() - t0 > startup_timeout:
                raise RuntimeError(f"Fides worker not ready after {startup_timeout:.0f}s; see {logfile}")
            if " ready." in logfile.read_text(errors="replace"):
                break
            time.sleep(0.5)
        log(f"Fides worker ready after {time.monotonic() - t0:.1f}s")
        yield proc
    finally:
        stop_process(proc, "worker")


def stop_process(proc: subprocess.Popen, what: str = "server") -> None:
    if proc.poll() is not None:
        return
    log(f"stopping Fides {what} (pid {proc.pid})")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------- Fides API


class Fides:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=f"{base}/api/v1", timeout=httpx.Timeout(60.0, read=3600.0))
        r = self.http.post(
            "/oauth/token", data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "grant_type": "client_credentials"}
        )
        r.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.http.request(method, path, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {r.status_code}: {r.text[:2000]}")
        body = r.json() if r.content else None
        if isinstance(body, dict) and body.get("failed"):
            raise RuntimeError(f"{method} {path} failed items: {json.dumps(body['failed'])[:2000]}")
        return body

    def configure(self, pg: dict[str, Any], dataset_file: Path) -> None:
        self.call(
            "PATCH",
            "/storage/config",
            json=[
                {
                    "name": "wlk local json",
                    "key": STORAGE_KEY,
                    "type": "local",
                    "format": "json",
                    "details": {"naming": "request_id"},
                }
            ],
        )
        self.call(
            "PATCH",
            "/connection",
            json=[
                {
                    "name": "Weiliaoke demo DB",
                    "key": CONNECTION_KEY,
                    "connection_type": "postgres",
                    "access": "write",
                    "disabled": False,
                }
            ],
        )
        secrets = {
            "host": pg["host"],
            "port": pg["port"],
            "dbname": pg["dbname"],
            "username": pg["user"],
            "password": pg["password"],
            "db_schema": "public",
        }
        self.call("PUT", f"/connection/{CONNECTION_KEY}/secret", params={"verify": "true"}, json=secrets)
        datasets = yaml.safe_load(dataset_file.read_text())["dataset"]
        self.call("PATCH", f"/connection/{CONNECTION_KEY}/dataset", json=datasets)
        self.call(
            "PATCH",
            "/dsr/policy",
            json=[{"name": "wlk access", "key": ACCESS_POLICY}, {"name": "wlk erasure", "key": ERASURE_POLICY}],
        )
        self.call(
            "PATCH",
            f"/dsr/policy/{ACCESS_POLICY}/rule",
            json=[
                {
                    "name": "access all user data",
                    "key": "wlk_access_rule",
                    "action_type": "access",
                    "storage_destination_key": STORAGE_KEY,
                }
            ],
        )
        self.call(
            "PATCH",
            f"/dsr/policy/{ACCESS_POLICY}/rule/wlk_access_rule/target",
            json=[{"name": "access user", "key": "wlk_access_user", "data_category": "user"}],
        )
        self.call(
            "PATCH",
            f"/dsr/policy/{ERASURE_POLICY}/rule",
            json=[
                {
                    "name": "erase all user data",
                    "key": "wlk_erasure_rule",
                    "action_type": "erasure",
                    "masking_strategy": {"strategy": "null_rewrite", "configuration": {}},
                }
            ],
        )
        self.call(
            "PATCH",
            f"/dsr/policy/{ERASURE_POLICY}/rule/wlk_erasure_rule/target",
            json=[{"name": "erasure user", "key": "wlk_erasure_user", "data_category": "user"}],
        )

    def submit(self, policy: str, phones: list[str], timeout: float) -> list[str]:
        body = [{"identity": {IDENTITY: {"label": "Agent phone", "value": ph}}, "policy_key": policy} for ph in phones]
        # In eager mode the POST returns only once the requests have run: its read timeout is the cap.
        res = self.call("POST", "/privacy-request", json=body, timeout=httpx.Timeout(60.0, read=timeout))
        return [item["id"] for item in res["succeeded"]]

    def statuses(self, ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        if ids is not None and len(ids) == 1:
            res = self.call("GET", "/privacy-request", params={"request_id": ids[0]})
            for item in res["items"]:
                out[item["id"]] = item
            return out
        page = 1
        while page <= 1000:
            res = self.call("GET", "/privacy-request", params={"page": page, "size": 100})
            for item in res["items"]:
                out[item["id"]] = item
            if page >= (res.get("pages") or 1):
                break
            page += 1
        return out if ids is None else {i: out[i] for i in ids if i in out}


# ---------------------------------------------------------------------------------------------- phases


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)


def summary(times: list[float], failures: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "n": len(times) + len(failures),
        "ok": len(times),
        "p50_ms": pct(times, 50),
        "p95_ms": pct(times, 95),
        "mean_ms": round(statistics.fmean(times), 1) if times else None,
        "max_ms": round(max(times), 1) if times else None,
        "times_ms": [round(t, 1) for t in times],
        "failures": failures,
    }


def sequential(
    fides: Fides, policy: str, phones: dict[int, str | None], args: argparse.Namespace, label: str, notes: list[str]
) -> dict[str, Any]:
    times: list[float] = []
    failures: list[dict[str, Any]] = []
    fides_ms: list[float] = []
    for n, (agent_id, phone) in enumerate(phones.items(), 1):
        if not phone:
            failures.append({"agent_id": agent_id, "error": "agent has no phone (missing or already erased)"})
            continue
        t0 = time.perf_counter()
        (rid,) = fides.submit(policy, [phone], args.request_timeout)
        post_ms = (time.perf_counter() - t0) * 1000
        status, item = "", {}
        while True:
            item = fides.statuses([rid]).get(rid, {})
            status = item.get("status", "")
            if status in TERMINAL:
                break
            if time.perf_counter() - t0 > args.request_timeout:
                status = f"timeout after {args.request_timeout:.0f}s (last status {status or '?'})"
                break
            time.sleep(args.poll_interval)
        ms = (time.perf_counter() - t0) * 1000
        if status == "complete":
            times.append(ms)
            started, finished = item.get("started_processing_at"), item.get("finished_processing_at")
            if started and finished:
                from datetime import datetime

                fides_ms.append((datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds() * 1000)
        else:
            failures.append({"agent_id": agent_id, "request_id": rid, "status": status, "ms": round(ms, 1)})
        log(f"{label} {n}/{len(phones)} agent {agent_id}: {status} in {ms:.0f} ms (POST returned after {post_ms:.0f} ms)")
    out = summary(times, failures)
    if fides_ms:
        out["fides_processing_p50_ms"] = pct(fides_ms, 50)
        out["fides_processing_note"] = "finished_processing_at - started_processing_at as Fides records them"
    return out


def queued(fides: Fides, phones: dict[int, str | None], args: argparse.Namespace) -> dict[str, Any]:
    valid = [p for p in phones.values() if p]
    skipped = len(phones) - len(valid)
    if not valid:
        return {"n": len(phones), "submitted": 0, "finished": 0, "seconds": None, "per_second": None}
    t0 = time.perf_counter()
    deadline = t0 + args.timeout
    ids: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def post(chunk: list[str]) -> None:
        try:
            got = fides.submit(ACCESS_POLICY, chunk, max(1.0, deadline - time.perf_counter()))
            with lock:
                ids.extend(got)
        except Exception as exc:  # recorded in the result
            with lock:
                errors.append(str(exc)[:500])

    # All at once: every POST (<= 50 requests each, Fides's bulk limit) is sent concurrently.
    chunks = [valid[i : i + BATCH] for i in range(0, len(valid), BATCH)]
    threads = [threading.Thread(target=post, args=(c,), daemon=True) for c in chunks]
    for t in threads:
        t.start()
    submit_s = None
    for t in threads:
        t.join(max(0.0, deadline - time.perf_counter()))
    if not any(t.is_alive() for t in threads):
        submit_s = time.perf_counter() - t0
    log(
        f"queued: {len(ids)} requests accepted ({len(errors)} POST errors)"
        + (f", all POSTs returned after {submit_s:.1f}s" if submit_s is not None else ", POSTs still running")
    )
    done: dict[str, str] = {}
    last_log = 0.0
    while ids and time.perf_counter() < deadline:
        with lock:
            want = list(ids)
        st = fides.statuses(want) if len(want) <= 5 else {k: v for k, v in fides.statuses().items() if k in set(want)}
        done = {k: v["status"] for k, v in st.items() if v.get("status") in TERMINAL}
        if len(done) >= len(valid) - len(errors) * BATCH and not any(t.is_alive() for t in threads):
            break
        if time.perf_counter() - last_log > 10:
            log(f"queued: {len(done)}/{len(valid)} finished after {time.perf_counter() - t0:.0f}s")
            last_log = time.perf_counter()
        time.sleep(max(args.poll_interval, 0.5))  # the list endpoint pages through every request: poll gently
    seconds = time.perf_counter() - t0
    complete = sum(1 for s in done.values() if s == "complete")
    statuses: dict[str, int] = {}
    for s in done.values():
        statuses[s] = statuses.get(s, 0) + 1
    return {
        "n": len(phones),
        "submitted": len(ids),
        "skipped_no_phone": skipped,
        "finished": len(done),
        "complete": complete,
        "statuses": statuses,
        "seconds": round(seconds, 2),
        "submit_seconds": round(submit_s, 2) if submit_s is not None else None,
        "per_second": round(complete / seconds, 3) if seconds > 0 else None,
        "timed_out": len(done) < len(ids),
        "post_errors": errors,
    }


# ---------------------------------------------------------------------------------------------- main


def _on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks, which stop the Fides processes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    pg = pg_params(args.db_url)
    mode = (
        "Celery task_always_eager=true (Fides's default): each privacy request runs in process in the POST "
        "handler's thread through the normal pipeline (DSR 3.0 request tasks -> graph traversal -> postgres "
        "connector); no separate Celery worker."
        if not args.celery_workers
        else f"Celery task_always_eager=false: requests are queued in Redis DB {REDIS_DB} and run by one `fides worker` "
        f"process (prefork, concurrency {args.celery_workers}) through the normal pipeline (DSR 3.0 request "
        "tasks -> graph traversal -> postgres connector)."
    )
    notes: list[str] = [
        "Fides webserver: uvicorn fides.api.main:app, 1 process, 127.0.0.1. " + mode,
        f"identity: custom identity '{IDENTITY}' on agents.phone (Fides's phone_number must be E.164, the DB "
        "stores 11-digit numbers without +86).",
        f"status polled every {args.poll_interval * 1000:.0f} ms (GET /api/v1/privacy-request?request_id=...); "
        "wall time = POST sent -> poll sees 'complete'.",
        "access results are written by Fides to a local JSON storage destination (its normal upload step).",
        "erasure: Fides's postgres connector masks by UPDATE (never DELETE): null_rewrite for nullable "
        "columns, string_rewrite 'MASKED' for NOT NULL text, random_string_rewrite for orders.order_no "
        "(NOT NULL UNIQUE); NOT NULL timestamps/numbers are read_only (left).",
    ]
    result: dict[str, Any] = {
        "peer": "fides",
        "version": FIDES_VERSION,
        "python": sys.version.split()[0],
        "mode": "eager" if not args.celery_workers else f"celery-worker x{args.celery_workers}",
        "db": {k: pg[k] for k in ("host", "port", "dbname")},
        "notes": notes,
    }
    import importlib.metadata as md

    result["machine"] = {"cpus": os.cpu_count(), "loadavg_start": [round(x, 2) for x in os.getloadavg()]}

    result["installed_version"] = md.version("ethyca-fides")
    if result["installed_version"] != FIDES_VERSION:
        notes.append(f"WARNING: installed ethyca-fides is {result['installed_version']}")

    demo = pg_connect(pg)
    with demo.cursor() as cur:
        cur.execute("SELECT count(*) FROM agents")
        result["db"]["agents"] = cur.fetchone()[0]
    log(
        f"demo DB {pg['dbname']}: {result['db']['agents']:,} agents; access {len(args.access)}, "
        f"erasure {len(args.erasure)}, queued {len(args.queued)}"
    )
    recreate_app_db(pg, args.app_db)
    flush_redis_db()
    workdir = Path(tempfile.mkdtemp(prefix="fides-bench-"))
    (workdir / "data" / "saas" / "config").mkdir(parents=True)
    sampler: RssSampler | None = None
    t_start = time.perf_counter()
    try:
        env = fides_env(pg, args.app_db, args.log_level, args.celery_workers)
        with contextlib.ExitStack() as stack:
            base, proc, logfile = stack.enter_context(fides_server(env, workdir, args.startup_timeout))
            sampler = RssSampler(proc.pid)
            sampler.start()
            result["server_log"] = str(logfile)
            if args.celery_workers:
                worker = stack.enter_context(fides_worker(env, workdir, args.startup_timeout))
                sampler.roots.append(worker.pid)
            fides = Fides(base)
            fides.configure(pg, Path(args.dataset))
            log("configured: connection, dataset, access + erasure policies")
            warm_id = (args.access or args.queued)[:1]
            if warm_id and args.warmup > 0:
                phone = agent_phones(demo, warm_id)
                runs = [sequential(fides, ACCESS_POLICY, phone, args, "warm-up", notes) for _ in range(args.warmup)]
                result["warmup"] = {
                    "agent_id": warm_id[0],
                    "n": args.warmup,
                    "times_ms": [t for r in runs for t in r["times_ms"]],
                    "failures": [f for r in runs for f in r["failures"]],
                }
            if args.access:
                result["access"] = sequential(fides, ACCESS_POLICY, agent_phones(demo, args.access), args, "access", notes)
            if args.erasure:
                before = snapshot(demo, args.erasure)
                result["erasure"] = sequential(fides, ERASURE_POLICY, agent_phones(demo, args.erasure), args, "erasure", notes)
                verified = compare(before, snapshot(demo, args.erasure))
                result["erasure"]["verified"] = {
                    "rows_deleted": sum(v["rows_deleted"] for v in verified.values()),
                    "pi_values_left": sum(v["pi_values_left"] for v in verified.values()),
                    "pi_values_erased": sum(v["pi_values_erased"] for v in verified.values()),
                    "left_columns": {
                        f"{t}.{c}": x["left"] for t, v in verified.items() for c, x in v["columns"].items() if x["left"]
                    },
                    "note": "per PI column of the erased agents' rows (datamap.yaml): values that had a value before "
                    "and are unchanged after ('left'), set NULL ('nulled') or rewritten ('rewritten'); "
                    "customers are not in the Fides dataset (other people's PI, datamap: customer subject)",
                    "tables": verified,
                }
                left = {t: v["pi_values_left"] for t, v in verified.items() if v["pi_values_left"]}
                log(f"erasure read-back: PI values left per table: {left}")
            if args.queued:
                result["queued"] = queued(fides, agent_phones(demo, args.queued), args)
                q = result["queued"]
                log(f"queued: {q['finished']}/{q['submitted']} finished in {q['seconds']}s ({q['per_second']} requests/s)")
            result.update(sampler.result())
            sampler.stop_event.set()
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        log(f"ERROR: {result['error'][:3000]}")
    except (KeyboardInterrupt, SystemExit) as exc:
        result["error"] = f"interrupted ({type(exc).__name__} {exc})"
        log(f"ERROR: {result['error']}")
    finally:
        if sampler is not None:
            sampler.stop_event.set()
            if "peak_rss_mib" not in result:
                result.update(sampler.result())
        result["total_seconds"] = round(time.perf_counter() - t_start, 1)
        result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        demo.close()
        failed = any(result.get(k, {}).get("failures") for k in ("access", "erasure"))
        if "error" in result or failed or args.keep_workdir:
            log(f"kept working dir {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
            result.pop("server_log", None)
        if not args.keep_app_db:
            with contextlib.suppress(Exception):
                recreate_app_db(pg, args.app_db, drop_only=True)
        with contextlib.suppress(Exception):
            flush_redis_db()
        Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=2, default=str))
        log(f"wrote {args.out}")
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
