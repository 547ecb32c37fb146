"""Meiye benchmarks (`make bench`). Prints figures and ratios measured in one run; never asserts timing.

For each database (SQLite, PostgreSQL) and member count (default 10,000 and 1,000,000):
  prepare the database (benchmarks/prepare.py), serve the app with gunicorn, then
  - checkout: 8 clients posting a realistic bill (3 lines at the member's price, stored value + WeChat,
    points earned) to /api/v1/bills/checkout/ for --seconds;
  - floor: the same clients against a bare Django view doing the same number of row writes, in as many
    write statements as the checkout (benchmarks/floor.py);
  - lookup: member lookup by full phone (/api/v1/members/lookup/);
  - hot card: 16 concurrent checkouts on ONE member's stored value (no deadlock, no serialisation error);
  - on PostgreSQL at the largest size: an open-loop run at --rate checkouts/s for --open-seconds.
Also pgbench (TPC-B-like, 8 clients) as the database's own floor on this machine.
Results are printed and written to benchmarks/results/<timestamp>.json.

Examples:  python benchmarks/run.py --quick        (10k members, SQLite and PostgreSQL, short runs)
           python benchmarks/run.py                (the full run recorded in docs/performance.md)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from benchmarks.load import Request, Result, closed_loop, json_request, open_loop
from benchmarks.prepare_body import checkout_body

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PG = "postgres://postgres@127.0.0.1:5432"


def db_env(backend: str, members: int) -> dict[str, str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.settings", "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    if backend == "postgresql":
        name = f"meiye_bench_{members}"
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], capture_output=True, check=False)
        env["DATABASE_URL"] = f"{PG}/{name}"
    else:
        (ROOT / "var" / "bench").mkdir(parents=True, exist_ok=True)
        env["MEIYE_SQLITE_PATH"] = str(ROOT / "var" / "bench" / f"bench_{members}.sqlite3")
    return env


def prepare(env: dict[str, str], members: int) -> dict:
    started = time.perf_counter()
    out = subprocess.run(
        [PY, "benchmarks/prepare.py", "--members", str(members)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"prepare failed:\n{out.stderr[-4000:]}")
    info = json.loads(out.stdout.strip().splitlines()[-1])
    info["prepare_seconds"] = round(time.perf_counter() - started, 1)
    return info


class Server:
    def __init__(self, env: dict[str, str], port: int, writes: int, rows: int, workers: int, threads: int) -> None:
        self.port = port
        (ROOT / "var" / "bench").mkdir(parents=True, exist_ok=True)  # a PostgreSQL-only run has made no SQLite file
        log = open(ROOT / "var" / "bench" / f"gunicorn-{port}.log", "w")  # noqa: SIM115 - closed in stop()
        self.log = log
        self.proc = subprocess.Popen(
            [
                PY,
                "-m",
                "gunicorn",
                "benchmarks.wsgi",
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                str(workers),
                "-k",
                "gthread",
                "--threads",
                str(threads),
                "--timeout",
                "60",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env={**env, "BENCH_FLOOR_WRITES": str(writes), "BENCH_FLOOR_ROWS": str(rows)},
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise SystemExit("gunicorn did not become healthy; see var/bench/gunicorn-*.log")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.close()


def scenario(info: dict, port: int, args: argparse.Namespace, backend: str, largest: bool) -> list[Result]:
    auth = {"Authorization": f"Bearer {info['token']}", "X-Store-Id": str(info["store_id"])}
    hq = {"Authorization": f"Bearer {info['hq_token']}"}
    members, items, phones = info["members"], info["items"], info["phones"]

    def checkout(client: int, n: int, member: int | None = None):
        who = member if member is not None else members[(client * 7919 + n) % len(members)]
        headers = {**auth, "Idempotency-Key": uuid.uuid4().hex}
        return json_request("POST", "/api/v1/bills/checkout/", checkout_body(who, items, info["payable_fen"]), headers)

    def floor(c: int, n: int) -> Request:
        return json_request("POST", "/bench/floor/", {}, {})

    results = []
    # Both measured at steady state: each gunicorn thread's connection compiles and prepares the checkout's
    # statements on first use, and each worker learns a member's account ids at her first checkout there.
    closed_loop("warm-up", port, checkout, args.clients, args.warm_up)
    results.append(closed_loop("checkout", port, checkout, args.clients, args.seconds))
    closed_loop("warm-up", port, floor, args.clients, min(args.warm_up, 2))
    results.append(closed_loop("floor", port, floor, args.clients, args.seconds))
    results.append(
        closed_loop(
            "lookup_by_phone",
            port,
            lambda c, n: ("GET", f"/api/v1/members/lookup/?phone={phones[(c * 131 + n) % len(phones)]}", hq, None),
            args.clients,
            args.seconds,
        )
    )
    hot = members[-1]
    results.append(closed_loop("hot_card_16", port, lambda c, n: checkout(c, n, hot), 16, min(args.seconds, 10)))
    if backend == "postgresql" and largest and args.open_seconds > 0:
        results.append(open_loop(f"open_loop_{args.rate}/s", port, checkout, args.rate, args.open_seconds))
    return results


def pgbench(seconds: int) -> dict:
    if not shutil.which("pgbench"):
        return {"skipped": "pgbench not installed"}
    base = ["-h", "127.0.0.1", "-U", "postgres"]
    subprocess.run(["createdb", *base, "meiye_pgbench"], capture_output=True, check=False)
    subprocess.run(["pgbench", *base, "-i", "-q", "-s", "4", "meiye_pgbench"], capture_output=True, check=True)
    out = subprocess.run(
        ["pgbench", *base, "-c", "8", "-j", "2", "-T", str(seconds), "meiye_pgbench"], capture_output=True, text=True
    )
    match = re.search(r"tps = ([\d.]+) \(without initial", out.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", out.stdout)
    return {
        "tps": float(match.group(1)) if match else None,
        "latency_avg_ms": float(latency.group(1)) if latency else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,1000000", help="member counts, comma-separated")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rate", type=int, default=150)
    parser.add_argument("--open-seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument(
        "--warm-up",
        type=float,
        default=8.0,
        help="seconds of checkouts before the measured ones (and up to 2 s of the floor before its own), so that "
        "both are measured warm: every connection has prepared its statements, every worker has met the members",
    )
    parser.add_argument("--quick", action="store_true", help="10k members, 8 s runs, 15 s open loop")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.seconds, args.open_seconds = "10000", 8, 15
    sizes = sorted(int(s) for s in args.sizes.split(","))
    report: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "args": vars(args),
        "runs": [],
    }
    port = 8710
    for backend in args.backends.split(","):
        for members in sizes:
            env = db_env(backend, members)
            print(f"\n## {backend}, {members:,} members — preparing…", flush=True)
            info = prepare(env, members)
            print(
                f"   prepared in {info['prepare_seconds']} s; one checkout = {info['checkout_queries']} queries, "
                f"{info['checkout_writes']} write statements changing {info['checkout_rows']} rows",
                flush=True,
            )
            port += 1
            server = Server(env, port, info["checkout_writes"], info["checkout_rows"], args.workers, args.threads)
            try:
                results = scenario(info, port, args, backend, members == sizes[-1])
            finally:
                server.stop()
            run = {
                "backend": backend,
                "members": members,
                "prepare": {
                    k: info[k] for k in ("prepare_seconds", "checkout_queries", "checkout_writes", "checkout_rows")
                },
                "results": [r.summary() for r in results],
            }
            report["runs"].append(run)
            for r in results:
                s = r.summary()
                print(
                    f"   {s['name']:<18} {s['rps']:>8} req/s  p50 {s['p50_ms']:>7} ms  p99 {s['p99_ms']:>7} ms  "
                    f"max {s['max_ms']} ms  errors {s['errors']}",
                    flush=True,
                )
    if "postgresql" in args.backends:
        report["pgbench"] = pgbench(min(args.seconds, 15))
        print(f"\n## pgbench (8 clients): {report['pgbench']}")
    print("\n## Ratios")
    report["ratios"] = ratios(report["runs"])
    for key, value in report["ratios"].items():
        print(f"   {key}: {value}")
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"\nWritten to {path.relative_to(ROOT)}")


def ratios(runs: list[dict]) -> dict[str, float]:
    def rps(run: dict, name: str) -> float:
        return next((r["rps"] for r in run["results"] if r["name"] == name), 0.0)

    out = {}
    for run in runs:
        floor = rps(run, "floor")
        if floor:
            out[f"checkout/floor {run['backend']} {run['members']:,}"] = round(rps(run, "checkout") / floor, 2)
    for backend in {r["backend"] for r in runs}:
        mine = sorted((r for r in runs if r["backend"] == backend), key=lambda r: r["members"])
        if len(mine) >= 2 and rps(mine[0], "checkout"):
            for name in ("checkout", "lookup_by_phone"):
                key = f"{name} {mine[-1]['members']:,}/{mine[0]['members']:,} {backend}"
                out[key] = round(rps(mine[-1], name) / rps(mine[0], name), 2) if rps(mine[0], name) else 0.0
    return out


if __name__ == "__main__":
    main()
