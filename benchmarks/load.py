"""HTTP load against a local server: closed loop (N clients back to back) and open loop (a constant
arrival rate, latency measured from each request's scheduled time so queueing is not hidden)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

Request = tuple[str, str, dict[str, str], bytes | None]  # method, path, headers, body
DROP_AFTER_SECONDS = 5.0


@dataclass
class Result:
    name: str
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    dropped: int = 0  # open loop only: not sent because the server was more than 5 s behind
    error_samples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def summary(self) -> dict[str, object]:
        return {
            "name": self.name,
            "ok": self.ok,
            "errors": self.errors,
            "dropped": self.dropped,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.pct(50), 1),
            "p95_ms": round(self.pct(95), 1),
            "p99_ms": round(self.pct(99), 1),
            "max_ms": round(max(self.latencies_ms), 1) if self.latencies_ms else None,
            "error_samples": self.error_samples[:3],
        }


class Client:
    """One keep-alive connection, reopened after an error."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def send(self, request: Request) -> tuple[int, bytes]:
        method, path, headers, body = request
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            return response.status, response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            raise


def _record(result: Result, lock: threading.Lock, started: float, status: int, body: bytes) -> None:
    elapsed = (time.perf_counter() - started) * 1000
    with lock:
        if 200 <= status < 300:
            result.latencies_ms.append(elapsed)
        else:
            result.errors += 1
            if len(result.error_samples) < 3:
                result.error_samples.append(f"{status} {body[:200]!r}")


def closed_loop(name: str, port: int, make: Callable[[int, int], Request], clients: int, seconds: float) -> Result:
    """``clients`` threads each send requests back to back for ``seconds``; make(client, n) builds one."""
    result = Result(name=name, seconds=seconds)
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(index: int) -> None:
        client = Client(port)
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            started = time.perf_counter()
            try:
                status, body = client.send(make(index, n))
            except (http.client.HTTPException, OSError) as exc:
                status, body = 599, repr(exc).encode()
            _record(result, lock, started, status, body)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return result


def open_loop(name: str, port: int, make: Callable[[int, int], Request], rate: float, seconds: float) -> Result:
    """Send ``rate`` requests per second for ``seconds`` whatever the server does; a slow answer does not
    delay the next send (up to 64 in flight)."""
    result = Result(name=name, seconds=seconds)
    lock = threading.Lock()
    local = threading.local()
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2

    def fire(n: int) -> None:
        scheduled = start + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        elif -delay > DROP_AFTER_SECONDS:
            # The server is saturated: every worker was busy past this request's time. Count it as
            # dropped rather than queue it, so the run ends soon after its window.
            with lock:
                result.errors += 1
                result.dropped += 1
            return
        if not hasattr(local, "client"):
            local.client = Client(port)
        try:
            status, body = local.client.send(make(0, n))
        except (http.client.HTTPException, OSError) as exc:
            status, body = 599, repr(exc).encode()
        _record(result, lock, scheduled, status, body)

    with ThreadPoolExecutor(max_workers=64) as pool:
        for n in range(total):
            pool.submit(fire, n)
    return result


def json_request(method: str, path: str, body: object | None, headers: dict[str, str]) -> Request:
    data = None if body is None else json.dumps(body).encode()
    return method, path, {"Content-Type": "application/json", **headers}, data
