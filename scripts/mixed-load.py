#!/usr/bin/env python3
"""Many clients at once against `abridge serve`, with every method the packaged models run.

Starts the server on loopback, runs CLIENTS threads for SECONDS, each posting /v1/compress
requests that cycle through auto, fast, selective-context, llmlingua and longllmlingua (with and
without a question, 100 to 1,000 tokens of the sample prose), while /healthz is polled and the
server's RSS sampled. Prints a JSON summary: answers by method and status, error codes, latency
percentiles, /healthz failures, idle / peak / final RSS. Exits 1 if any answer was an error other
than the documented load shedding (503 `overloaded`: the queue or the connection cap is full;
503 `timeout`: waiting plus compressing took over `request_timeout_seconds`), or /healthz failed.
Not part of CI: it takes minutes and its numbers depend on the machine (docs/RELIABILITY.md).

    scripts/mixed-load.py [--clients 64] [--seconds 120] [--bin target/debug/abridge]

Standard library only.
"""

import argparse
import itertools
import json
import pathlib
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[1]
METHODS = ["auto", "fast", "selective-context", "llmlingua", "longllmlingua"]
SIZES = [100, 400, 1000]  # about this many cl100k tokens (4.75 bytes a token)
QUESTION = "What does the text say about the main subject?"
# Answers the server documents for more work than it can take (docs/SERVER.md), not errors.
LOAD_SHEDDING = [(503, "overloaded"), (503, "timeout")]


def bodies():
    """Every (method, size, with question) combination, as request bodies."""
    sample = (REPO / "examples" / "sample.txt").read_text(encoding="utf-8")
    for method, tokens, asks in itertools.product(METHODS, SIZES, [False, True]):
        if method == "longllmlingua" and not asks:
            continue  # it needs a question
        text = ""
        while len(text) < tokens * 4.75:
            text += sample + "\n"
        text = text[: int(tokens * 4.75)].rsplit(" ", 1)[0]
        body = {"context": [text], "method": method, "rate": 0.5}
        if asks:
            body["question"] = QUESTION
        yield method, json.dumps(body).encode()


def post(url, body, timeout):
    """(status, error code or None, seconds)."""
    started = time.monotonic()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status, None, time.monotonic() - started
    except urllib.error.HTTPError as e:
        try:
            code = json.loads(e.read())["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = "unreadable"
        return e.code, code, time.monotonic() - started
    except OSError as e:  # refused, reset, timed out: the client saw no answer
        return 0, type(e).__name__, time.monotonic() - started


def rss_mib(pid):
    try:
        text = pathlib.Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    return int(found.group(1)) / 1024 if found else 0.0


def percentile(values, q):
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2) if values else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--bin", default=str(REPO / "target" / "debug" / "abridge"))
    parser.add_argument("--port", type=int, default=18181)
    parser.add_argument("--timeout", type=float, default=300, help="client-side, per request")
    args = parser.parse_args()

    log = open("/tmp/abridge-mixed-load-server.log", "w")
    server = subprocess.Popen(
        [args.bin, "serve", "--host", "127.0.0.1", "--port", str(args.port)], stderr=log
    )
    base = f"http://127.0.0.1:{args.port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit("the server did not start: see /tmp/abridge-mixed-load-server.log")
                time.sleep(0.2)
        idle = rss_mib(server.pid)
        catalogue = list(bodies())
        results = []  # (method, status, code, seconds)
        lock = threading.Lock()
        stop_at = time.monotonic() + args.seconds

        def client(k):
            for i in itertools.count(k):
                if time.monotonic() >= stop_at:
                    return
                method, body = catalogue[i % len(catalogue)]
                status, code, seconds = post(base + "/v1/compress", body, args.timeout)
                with lock:
                    results.append((method, status, code, seconds))

        peak = [idle]
        healthz = {"ok": 0, "failed": 0, "slowest_s": 0.0}
        running = True

        def watch():
            while running:
                peak[0] = max(peak[0], rss_mib(server.pid))
                started = time.monotonic()
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=5).read()
                    healthz["ok"] += 1
                except OSError:
                    healthz["failed"] += 1
                healthz["slowest_s"] = max(healthz["slowest_s"], round(time.monotonic() - started, 3))
                time.sleep(0.5)

        watcher = threading.Thread(target=watch)
        watcher.start()
        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - started
        running = False
        watcher.join()
        time.sleep(2)
        final = rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)

    by_method = {}
    for method, status, code, _ in results:
        key = str(status) if code is None else f"{status} {code}"
        counts = by_method.setdefault(method, {})
        counts[key] = counts.get(key, 0) + 1
    shed = [r for r in results if (r[1], r[2]) in LOAD_SHEDDING]
    errors = [r for r in results if r[1] != 200 and (r[1], r[2]) not in LOAD_SHEDDING]
    latencies = [r[3] for r in results if r[1] == 200]
    summary = {
        "clients": args.clients,
        "seconds": round(wall, 1),
        "requests": len(results),
        "answers": by_method,
        "errors": len(errors),
        "load_shed": {code: sum(1 for r in shed if r[2] == code) for _, code in LOAD_SHEDDING},
        "latency_s": {q: percentile(latencies, p) for q, p in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)]},
        "healthz": healthz,
        "rss_mib": {"idle": round(idle), "peak": round(peak[0]), "final": round(final)},
    }
    print(json.dumps(summary, indent=2))
    sys.exit(1 if errors or healthz["failed"] else 0)


if __name__ == "__main__":
    main()
