#!/usr/bin/env python
"""Benchmark of the gate over HTTP (issue 9, "Benchmark"): ``yinsi serve`` on 127.0.0.1 with keep-alive clients.

Measures, in one run against one server process (SQLite data directory seeded like ``yinsi serve --demo``):

1. the baseline: ``GET /healthz`` (a constant JSON answer from the same server, no database, no key);
2. ``POST /api/v1/gate/check`` with one decision per request, and with batches of 100 decisions, records on
   (the default), with the demo app key; decisions/s, requests/s, p50/p99 latency, at concurrency 16 and 64;
3. the server's RSS when idle (after start-up) and after the load;
4. ``yinsi --help`` wall time against ``python -c pass``.

The load generator is ``wrk`` (keep-alive, 2 threads, ``--latency``; ``apt-get install wrk``); without it,
a Python generator (httpx, one keep-alive client per connection in threads) runs a bounded number of
requests and is much slower itself, which the report says. Both share the 2 cores with the server.

Usage: ``.venv/bin/python bench/api/run.py [--duration 10] [--port PORT] [--no-write] [--out FILE]``
(about 2 min). The table is written to ``docs/benchmarks/api.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
DOC = ROOT / "docs" / "benchmarks" / "api.md"
YINSI = ROOT / ".venv" / "bin" / "yinsi"
PYTHON = ROOT / ".venv" / "bin" / "python"

CHAT_SCOPE = "item:customer_chat:comms.chat_content"
ITEM_SCOPE = "item:customer_chat:location.precise"
RECIPIENT_SCOPE = "recipient:payment_institutions"
DISCLOSURES: dict[str, dict[str, str]] = {
    "policy": {},
    CHAT_SCOPE: {"necessity": "与客户沟通须传输聊天内容", "impact": "聊天内容可能含有个人信息"},
    ITEM_SCOPE: {"necessity": "向客户发送所在楼盘位置", "impact": "位置可能被客户知悉"},
    RECIPIENT_SCOPE: {"recipient_contact": "见支付机构官网", "method": "接口传输"},
}
#: The gate benchmark's warm mix (bench/gate/run.py): allowed with consents, statutory duty, refused, provision.
MIX: list[dict[str, Any]] = [
    {"action": "collect", "feature": "customer_chat", "items": ["comms.chat_content", "location.precise"],
     "device": "dev-1"},
    {"action": "collect", "feature": "register_login", "items": ["contact.mobile", "account.sms_code"]},
    {"action": "use", "purpose": "用户画像与精准广告推送", "items": ["contact.mobile"]},
    {"action": "provide", "recipient": "payment_institutions",
     "items": ["transaction.order_number", "transaction.amount"]},
]
SUBJECTS = [f"bench-{i}" for i in range(16)]
TARGETS = {"single_vs_baseline": 0.6, "p99_ms_c64": 20.0, "batch_decisions": 50_000, "idle_rss_mib": 150}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rss_mib(pid: int) -> float:
    total = 0.0
    for p in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    out = [int(k) for k in kids]
    for k in list(out):
        out += children(k)
    return out


# --- the server ------------------------------------------------------------------------------------------

def seed(data_dir: Path) -> tuple[str, str]:
    """The demo data (five seed tenants, the demo app key) plus consents for the benchmark's subjects."""
    from yinsi.api import demo
    from yinsi.services.consent import ConsentService

    try:
        setup = demo.prepare(data_dir)
    except Exception:  # the seeding login's TOTP code can fall on a 30-second boundary: once more
        time.sleep(1)
        setup = demo.prepare(data_dir)
    with ConsentService(setup.database_url) as svc:
        for subject in SUBJECTS:
            for scope, shown in DISCLOSURES.items():
                svc.record_consent(demo.TENANT, subject, scope, disclosures=shown)
            svc.record_permission(demo.TENANT, subject, "dev-1", "location", "granted")
    return setup.app_key, demo.TENANT


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "YINSI_DATA_DIR": str(data_dir)}
    env.pop("YINSI_DATABASE_URL", None)
    proc = subprocess.Popen([str(YINSI), "serve", "--data-dir", str(data_dir), "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(data_dir / "server.log", "wb"))  # noqa: SIM115
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {(data_dir / 'server.log').read_text()[-2000:]}")
        try:
            # only once our own server says it listens (another one may hold the port)
            if "Uvicorn running" in (data_dir / "server.log").read_text(errors="replace") and \
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                time.sleep(0.5)
                if proc.poll() is None:
                    return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("server did not start within 60 s")


# --- load ----------------------------------------------------------------------------------------------------

@dataclass
class Result:
    case: str
    concurrency: int
    requests: int
    seconds: float
    per_request: int  # decisions per request (0: baseline)
    p50_ms: float
    p99_ms: float
    errors: int
    tool: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


WRK_SCRIPT = """
wrk.method = "{method}"
{body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, method: str, body: str | None, token: str, conns: int, duration: int, tmp: Path) -> dict[str, Any]:
    script = tmp / "wrk.lua"
    load_body = ""
    if body:  # read from a file: a Lua string literal knows no \\u escapes
        (tmp / "body.json").write_bytes(body.encode())
        load_body = f'local f = io.open("{tmp / "body.json"}", "rb")\nwrk.body = f:read("*a")\nf:close()'
    script.write_text(WRK_SCRIPT.format(method=method, body=load_body, token=token))
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{duration}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout

    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")

    reqs = re.search(r"(\d+) requests in ([\d.]+)(s|m)", out)
    assert reqs, out
    seconds = float(reqs.group(2)) * (60 if reqs.group(3) == "m" else 1)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(g) for g in socket.groups()) if socket else 0)
    return {"requests": int(reqs.group(1)), "seconds": seconds, "p50": latency("50"), "p99": latency("99"),
            "errors": errors}


def python_load(url: str, method: str, body: str | None, token: str, conns: int, duration: int,
                max_requests: int = 200_000) -> dict[str, Any]:
    """Fallback without wrk: ``conns`` threads, each with its own keep-alive httpx client."""
    import httpx

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + duration
    per_thread = max_requests // conns

    def worker() -> None:
        mine: list[float] = []
        with httpx.Client(headers=headers) as client:
            for _ in range(per_thread):
                if time.monotonic() >= stop:
                    break
                t0 = time.perf_counter()
                r = client.request(method, url, content=body)
                mine.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    errors[0] += 1
        with lock:
            lat.extend(mine)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    lat.sort()
    return {"requests": len(lat), "seconds": seconds, "p50": lat[len(lat) // 2], "p99": lat[int(len(lat) * .99)],
            "errors": errors[0]}


def gate_body(batch: int) -> str:
    questions = [{"subject": SUBJECTS[i % len(SUBJECTS)], **MIX[i % len(MIX)]} for i in range(max(batch, 1))]
    return json.dumps({"batch": questions} if batch else questions[0], ensure_ascii=False)


def cli_times(reps: int = 7) -> tuple[float, float]:
    """Median wall seconds of ``yinsi --help`` and of ``python -c pass``."""
    def wall(cmd: list[str]) -> float:
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    wall([str(YINSI), "--help"])  # the first run fills the OS cache and writes .pyc files
    return wall([str(YINSI), "--help"]), wall([str(PYTHON), "-c", "pass"])


# --- report ----------------------------------------------------------------------------------------------------

def markdown(results: list[Result], rss: dict[str, float], cli: tuple[float, float], cmd: str, wall: float,
             tool: str, load: tuple[tuple[float, ...], tuple[float, ...]], duration: int) -> str:
    base = {r.concurrency: r.rps for r in results if r.per_request == 0}
    lines = [
        "# Benchmark: the gate over HTTP (`yinsi serve`)",
        "",
        f"- Command: `{cmd}`",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; wall time of the run {wall:.0f} s",
        f"- Machine: nproc={os.cpu_count()}, {platform.system()} {platform.release()}, Python "
        f"{platform.python_version()}; load average at start {', '.join(f'{x:.2f}' for x in load[0])}, at end "
        f"{', '.join(f'{x:.2f}' for x in load[1])} (other processes share the machine)",
        f"- Server: `yinsi serve` (one uvicorn worker process) on 127.0.0.1, SQLite data directory seeded like "
        f"`--demo`, processing records on (written by the background writer). Load: {tool}, keep-alive, "
        f"{duration} s per case, on the same 2 cores as the server.",
        "",
        "| Case | concurrency | requests/s | decisions/s | p50 ms | p99 ms | errors | vs baseline | target | met |",
        "|---|--:|--:|--:|--:|--:|--:|---|---|---|",
    ]
    for r in results:
        ratio = r.rps / base[r.concurrency] if r.concurrency in base and r.per_request else None
        target, met = "", ""
        if r.per_request == 1:
            target = "≥ 0.6× baseline" + (", p99 ≤ 20 ms" if r.concurrency == 64 else "")
            ok = ratio is not None and ratio >= TARGETS["single_vs_baseline"] and (
                r.concurrency != 64 or r.p99_ms <= TARGETS["p99_ms_c64"])
            met = "yes" if ok else "**no**"
        elif r.per_request > 1:
            target = "≥ 50,000 decisions/s"
            met = "yes" if r.rps * r.per_request >= TARGETS["batch_decisions"] else "**no**"
        decisions = f"{r.rps * r.per_request:,.0f}" if r.per_request else "—"
        vs = "1×" if not r.per_request else (f"{ratio:.2f}×" if ratio is not None else "")
        lines.append(f"| {r.case} | {r.concurrency} | {r.rps:,.0f} | {decisions} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
                     f"{r.errors} | {vs} | {target} | {met} |")
    idle_ok = rss["idle"] <= TARGETS["idle_rss_mib"]
    lines += [
        "",
        f"Server RSS: idle after start-up {rss['idle']:.0f} MiB (target ≤ 150 MiB: {'yes' if idle_ok else '**no**'}), "
        f"after the single-decision cases {rss['after_single']:.0f} MiB, at the end {rss['end']:.0f} MiB.",
        "",
        f"CLI start-up: `yinsi --help` {cli[0] * 1000:.0f} ms against `python -c pass` {cli[1] * 1000:.0f} ms "
        "(median of 7 runs each, after one untimed run).",
        "",
        "Notes:",
        "",
        "- Baseline: `GET /healthz`, which answers a constant JSON object from the same server (no key, no database).",
        "- Single decisions: `POST /api/v1/gate/check` with one question (the gate benchmark's mix of four, over 16 "
        "subjects who gave the consents; one request body per run, so the same question repeats and its decision is "
        "memoised after the first). Batches: 100 questions per request, the same mix over the same 16 subjects.",
        "- Latencies are those the load generator measures per request (for a batch: the whole batch).",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds per case")
    ap.add_argument("--port", type=int, default=0, help="default: a free port")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--out", type=Path, default=DOC)
    args = ap.parse_args()
    if not args.port:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            args.port = sock.getsockname()[1]
    tool = "wrk (2 threads)" if shutil.which("wrk") else "Python threads with httpx (no wrk installed)"
    load_start = os.getloadavg()
    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="yinsi-api-bench-"))
    results: list[Result] = []
    rss: dict[str, float] = {}
    proc = None
    alive = False
    server_log = ""
    try:
        log("seeding the demo data directory")
        token, _tenant = seed(tmp / "data")
        log("starting yinsi serve")
        proc = start_server(tmp / "data", args.port)
        time.sleep(2)
        rss["idle"] = rss_mib(proc.pid)
        base = f"http://127.0.0.1:{args.port}"

        def run(case: str, method: str, path: str, body: str | None, conns: int, per_request: int) -> None:
            log(f"{case}, concurrency {conns}")
            fn = wrk if shutil.which("wrk") else None
            if fn is not None:
                got = fn(base + path, method, body, token, conns, args.duration, tmp)
            else:
                got = python_load(base + path, method, body, token, conns, args.duration)
            results.append(Result(case, conns, got["requests"], got["seconds"], per_request, got["p50"], got["p99"],
                                  got["errors"], tool))

        # warm-up: the compiled policy, the subjects' states, the memo, connection pools
        for body in (gate_body(0), gate_body(100)):
            if shutil.which("wrk"):
                wrk(base + "/api/v1/gate/check", "POST", body, token, 16, 2, tmp)
            else:
                python_load(base + "/api/v1/gate/check", "POST", body, token, 4, 2, 2000)
        for conns in (16, 64):
            run("Baseline: `GET /healthz` (constant JSON)", "GET", "/healthz", None, conns, 0)
            run("Gate, one decision per request", "POST", "/api/v1/gate/check", gate_body(0), conns, 1)
        rss["after_single"] = rss_mib(proc.pid)
        for conns in (16, 64):
            run("Gate, batches of 100 decisions", "POST", "/api/v1/gate/check", gate_body(100), conns, 100)
        rss["end"] = rss_mib(proc.pid)
        alive = proc.poll() is None
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        server_log = (tmp / "data" / "server.log").read_text(errors="replace") if (tmp / "data" / "server.log").exists() else ""
        shutil.rmtree(tmp, ignore_errors=True)
    statuses: dict[str, int] = {}
    for line in server_log.splitlines():
        m = re.search(r"yinsi\.api\.access (\w+) (\S+) (\d{3}) ", line)
        if m:
            key = f"{m.group(1)} {m.group(2)} {m.group(3)}"
            statuses[key] = statuses.get(key, 0) + 1
    problems = [line for line in server_log.splitlines() if "ERROR" in line or "Traceback" in line][:5]
    log("CLI start-up")
    cli = cli_times()
    wall = time.perf_counter() - t_start
    cmd = ".venv/bin/python bench/api/run.py" + (f" --duration {args.duration}" if args.duration != 10 else "")
    text = markdown(results, rss, cli, cmd, wall, tool, (load_start, os.getloadavg()), args.duration)
    text += (f"- The server was {'still running' if alive else '**no longer running**'} after the last case. "
             "Responses by route and status, from the server's access log: "
             + ", ".join(f"`{k}` {v:,}" for k, v in sorted(statuses.items())) + ".\n")
    if problems:
        text += "- Errors in the server's log (first 5): " + "; ".join(f"`{p[:200]}`" for p in problems) + "\n"
    print(text)
    if not args.no_write:
        kept = ""
        if args.out.exists():  # a hand-written section from KEEP_MARKER on survives re-runs
            old = args.out.read_text(encoding="utf-8")
            if KEEP_MARKER in old:
                kept = "\n" + old[old.index(KEEP_MARKER):]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + kept, encoding="utf-8")
        log(f"wrote {args.out}")
    return 0


KEEP_MARKER = "<!-- kept across runs -->"

if __name__ == "__main__":
    raise SystemExit(main())
