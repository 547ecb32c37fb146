"""One API checkout against the floor, in process: time and CPU per request, no HTTP server, no load generator.

Profiling and A/B comparisons of the checkout's own cost want a steadier figure than the HTTP benchmark's: this
drives Django's test client against a database prepared by benchmarks/prepare.py (run benchmarks/run.py once,
or prepare.py by hand), posts the benchmark's realistic bill N times and the floor view N times — taking turns,
20 of one then 20 of the other, so that the drifting speed of a shared machine weighs on both alike — and prints
the wall time and the CPU time of this process per request; on PostgreSQL also the CPU time of the database
backend serving it (read from /proc, so the server must run on this machine). Figures only; nothing is
asserted. Each run adds N bills to the benchmark database.

    python benchmarks/inprocess.py --backend sqlite --n 300
    python benchmarks/inprocess.py --backend postgresql --n 300 --profile   (cProfile of the checkouts)
    python benchmarks/inprocess.py --backend postgresql --queries   (the SQL of one checkout)
    python benchmarks/inprocess.py --backend postgresql --floor 11,28   (the same floor for old and new code)

The profile is sorted by ``BENCH_PROFILE_SORT`` (default ``tottime``; ``cumulative`` shows where the time goes
from the view down) and restricted by ``BENCH_PROFILE_LINES``: pstats restrictions separated by commas, each a
number of lines or a regular expression of the file and function (default ``40``; ``meiye/,60`` is the first 60
lines of the project's own code). ``BENCH_PROFILE_CALLERS=<regex>`` also prints who called what it matches.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.prepare_body import checkout_body
from benchmarks.run import db_env, prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--members", type=int, default=10_000, help="which prepared benchmark database")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the checkouts")
    parser.add_argument("--queries", action="store_true", help="print the SQL of one checkout and stop")
    parser.add_argument(
        "--floor",
        metavar="WRITES,ROWS",
        help="the floor's write statements and rows, instead of the preparer's count of this code's checkout: "
        "to compare two versions of the code whose checkouts write in different numbers of statements",
    )
    args = parser.parse_args()

    env = db_env(args.backend, args.members)
    info = prepare(env, args.members)  # idempotent: makes sure the database is ready, returns the token
    os.environ.update({k: v for k, v in env.items() if k in ("DATABASE_URL", "MEIYE_SQLITE_PATH")})
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    writes, rows = info["checkout_writes"], info["checkout_rows"]
    if args.floor:
        try:
            writes, rows = (int(part) for part in args.floor.split(","))
        except ValueError:
            parser.error(
                f"--floor：需要两个整数 WRITES,ROWS（例如 11,28），收到 {args.floor!r}。 / "
                f"--floor: two whole numbers, WRITES,ROWS (such as 11,28), got {args.floor!r}."
            )
    os.environ["BENCH_FLOOR_WRITES"] = str(writes)
    os.environ["BENCH_FLOOR_ROWS"] = str(rows)
    if args.backend == "sqlite":
        os.environ.pop("DATABASE_URL", None)

    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    headers: dict[str, Any] = {
        "HTTP_AUTHORIZATION": f"Bearer {info['token']}",
        "HTTP_X_STORE_ID": str(info["store_id"]),
    }
    members, items = info["members"], info["items"]

    def checkout(i: int) -> None:
        response = client.post(
            "/api/v1/bills/checkout/",
            json.dumps(checkout_body(members[i % len(members)], items, info["payable_fen"])),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
            **headers,
        )
        if response.status_code != 201:
            raise SystemExit(f"checkout failed: {response.status_code} {response.content[:300]!r}")

    def floor(_i: int) -> None:
        if client.post("/bench/floor/", "{}", content_type="application/json").status_code != 201:
            raise SystemExit("the floor view failed")

    for i in range(20):  # warm up: connections, compiled queries, prepared statements
        checkout(i)
        floor(i)
    if args.queries:
        _print_queries(lambda: checkout(20))
        return
    backend_pid = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend_pid = cursor.fetchone()[0]

    results = _interleaved({"floor": floor, "checkout": checkout}, args.n, backend_pid, profile=args.profile)
    print(
        f"{args.backend}, {args.n} requests each, {info['checkout_writes']} write statements / "
        f"{info['checkout_rows']} rows per checkout, the floor {writes} / {rows}"
    )
    for name, figures in results.items():
        line = f"   {name:<9} wall {figures['wall_ms']:6.2f} ms   python cpu {figures['cpu_ms']:6.2f} ms"
        if backend_pid is not None:
            line += f"   postgresql cpu {figures['db_cpu_ms']:6.2f} ms"
        print(line)
    total = {name: f["cpu_ms"] + f.get("db_cpu_ms", 0.0) for name, f in results.items()}
    print(
        f"   floor/checkout: wall {results['floor']['wall_ms'] / results['checkout']['wall_ms']:.2f}, "
        f"cpu {total['floor'] / total['checkout']:.2f}"
    )


def _print_queries(call: Callable[[], None]) -> None:
    """The statements one warm checkout sends, in order, with the time since the request began when each was
    sent (a statement queued in a pipeline shows as sent; its answer is read with the next one waited for)."""
    from django.db import connection

    sent: list[tuple[float, str]] = []

    def watch(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent.append((time.perf_counter(), sql))
        return execute(sql, params, many, context)

    start = time.perf_counter()
    with connection.execute_wrapper(watch):
        call()
    end = time.perf_counter()
    for number, (at, sql) in enumerate(sent, 1):
        print(f"{number:3}. {(at - start) * 1000:6.2f} ms  {' '.join(sql.split())[:150]}")
    print(f"{len(sent)} statements; the request took {(end - start) * 1000:.2f} ms")


BLOCK = 20  # requests of one kind in a row; the kinds take turns so that both see the machine alike


def _interleaved(
    calls: dict[str, Callable[[int], None]], n: int, backend_pid: int | None, *, profile: bool
) -> dict[str, dict[str, Any]]:
    """``n`` requests of each kind, in turns of ``BLOCK``: a shared machine's speed drifts by tens of percent
    over a minute, and measuring one kind after the other would put the drift into their ratio."""
    totals = {name: {"wall": 0.0, "cpu": 0.0, "db": 0.0} for name in calls}
    profiler = cProfile.Profile() if profile else None
    for start in range(0, n, BLOCK):
        for name, call in calls.items():
            watched = profiler if name == "checkout" else None
            db_before = _process_cpu(backend_pid) if backend_pid else 0.0
            wall, cpu = time.perf_counter(), time.process_time()
            if watched:
                watched.enable()
            for i in range(start, min(start + BLOCK, n)):
                call(i)
            if watched:
                watched.disable()
            totals[name]["wall"] += time.perf_counter() - wall
            totals[name]["cpu"] += time.process_time() - cpu
            if backend_pid:
                totals[name]["db"] += _process_cpu(backend_pid) - db_before
    results = {}
    for name, total in totals.items():
        figures = {"wall_ms": total["wall"] / n * 1000, "cpu_ms": total["cpu"] / n * 1000}
        if backend_pid:
            figures["db_cpu_ms"] = total["db"] / n * 1000
        results[name] = figures
    if profiler:
        _print_profile(profiler)
    return results


def _print_profile(profiler: cProfile.Profile) -> None:
    stats = pstats.Stats(profiler).sort_stats(os.environ.get("BENCH_PROFILE_SORT", "tottime"))
    stats.print_stats(*_restrictions(os.environ.get("BENCH_PROFILE_LINES", "40")))
    if os.environ.get("BENCH_PROFILE_CALLERS"):
        stats.print_callers(os.environ["BENCH_PROFILE_CALLERS"])


def _restrictions(spec: str) -> list[int | str]:
    """``BENCH_PROFILE_LINES``: comma-separated pstats restrictions, each a line count or a regex of file names."""
    return [int(part) if part.isdigit() else part for part in spec.split(",") if part]


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process on this machine (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
