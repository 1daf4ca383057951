"""Load test of the web interface on loopback: many concurrent clients for a while; stops by itself.

    python benchmarks/load_test.py --clients 16 --duration 45                 # both APIs, its own server
    python benchmarks/load_test.py --api http --url http://127.0.0.1:7860/    # or one API of a running one

Every request captions an example photo: through Gradio's ``/caption`` endpoint with
``gradio_client``'s defaults (it downloads any output files), or through the plain
HTTP API, ``POST /v1/caption`` (multipart, one ``httpx`` client per user). A request
refused because the queue is full counts as "busy" (the server's bounded answer),
every other error as a failure; among admitted requests the target is zero failures.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Table, percentile  # noqa: E402

APIS = ("gradio", "http")


def gradio_caller(url: str) -> Callable[[str], str]:
    """One user of Gradio's ``/caption`` endpoint, with gradio_client's defaults."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    return lambda image: client.predict(handle_file(image), api_name="/caption")[0]


def http_caller(url: str) -> Callable[[str], str]:
    """One user of ``POST /v1/caption``."""
    import httpx

    client = httpx.Client(base_url=url, timeout=120)

    def call(image: str) -> str:
        with open(image, "rb") as photo:
            response = client.post("v1/caption", files={"image": (Path(image).name, photo, "image/jpeg")})
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
        return response.json()["caption"]

    return call


CALLERS = {"gradio": gradio_caller, "http": http_caller}
ENDPOINTS = {"gradio": "Gradio /caption (gradio_client)", "http": "POST /v1/caption"}


def load(api: str, url: str, images: list[str], clients: int, duration_s: float, max_requests: int) -> dict:
    """Run ``clients`` threads against ``api`` at ``url`` until ``duration_s`` or ``max_requests``; the tally."""
    deadline = time.monotonic() + duration_s
    lock = threading.Lock()
    tally: dict = {"latencies_ms": [], "busy": 0, "failures": []}
    issued = [0]

    def client_loop(index: int) -> None:
        call = CALLERS[api](url)
        while time.monotonic() < deadline:
            with lock:
                if issued[0] >= max_requests:
                    return
                issued[0] += 1
                image = images[issued[0] % len(images)]
            start = time.perf_counter()
            try:
                caption = call(image)
                if not caption:
                    raise RuntimeError("empty caption")
            except Exception as error:  # noqa: BLE001 - every failure is counted and reported
                with lock:
                    if "queue is full" in str(error).lower() or "HTTP 503" in str(error):
                        tally["busy"] += 1
                    else:
                        tally["failures"].append(f"{type(error).__name__}: {error}")
                continue
            with lock:
                tally["latencies_ms"].append((time.perf_counter() - start) * 1000)

    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration_s + 120)
    elapsed = time.perf_counter() - started
    latencies = tally["latencies_ms"]
    return {"api": api, "clients": clients, "seconds": elapsed, "ok": len(latencies), "busy": tally["busy"],
            "failed": len(tally["failures"]), "failures": tally["failures"][:10],
            "requests_per_s": len(latencies) / elapsed,
            "p50_ms": percentile(latencies, 50) if latencies else None,
            "p95_ms": percentile(latencies, 95) if latencies else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="A running server (default: start one on 127.0.0.1)")
    parser.add_argument("--api", choices=APIS, action="append", help="Which API to load (default: both, one "
                        "after the other)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=45.0, help="Seconds per API")
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--queue-size", type=int, default=64, help="For the server this script starts")
    parser.add_argument("--output", help="Write the results as JSON here")
    args = parser.parse_args()

    from captioner.model_catalog import shipped_assets_dir

    images = sorted(str(p) for p in (shipped_assets_dir("examples") or Path(".")).glob("*.jpg"))
    apis = args.api or list(APIS)
    if args.url:
        results = [load(api, args.url, images, args.clients, args.duration, args.max_requests) for api in apis]
    else:
        from captioner.ui import UIConfig, build_app, launch

        app = build_app(UIConfig(device="cpu", queue_size=args.queue_size))
        try:
            _, url, _ = launch(app, server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
            results = [load(api, url, images, args.clients, args.duration, args.max_requests) for api in apis]
        finally:
            app.close()
            app.captioner_service.close()
    print(Table(f"Load test: {args.clients} clients for {args.duration:.0f} s per API on loopback",
                ["API", "ok", "busy (queue full)", "failed", "requests/s", "p50 ms", "p95 ms"],
                [[ENDPOINTS[r["api"]], r["ok"], r["busy"], r["failed"], r["requests_per_s"], r["p50_ms"] or 0,
                  r["p95_ms"] or 0] for r in results]).render())
    for result in results:
        for failure in result["failures"]:
            print(f"failure ({result['api']}):", failure)
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    sys.exit(1 if any(r["failed"] for r in results) else 0)


if __name__ == "__main__":
    main()
