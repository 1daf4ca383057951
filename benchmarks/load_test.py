"""Load test of the web interface on loopback: many concurrent clients for a while; stops by itself.

    python benchmarks/load_test.py --clients 16 --duration 60        # starts its own server
    python benchmarks/load_test.py --url http://127.0.0.1:7860/      # or loads a running one

Every request is the /caption endpoint with an example photo (the output images are
not downloaded: the clients run on the server's own CPUs). A request refused
because the queue is full counts as "busy" (the server's bounded answer), every
other error as a failure; among admitted requests the target is zero failures.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Table, percentile  # noqa: E402


def load(url: str, images: list[str], clients: int, duration_s: float, max_requests: int) -> dict:
    """Run ``clients`` threads against ``url`` until ``duration_s`` or ``max_requests``; returns the tally."""
    from gradio_client import Client, handle_file

    deadline = time.monotonic() + duration_s
    lock = threading.Lock()
    tally: dict = {"latencies_ms": [], "busy": 0, "failures": []}
    issued = [0]

    def client_loop(index: int) -> None:
        client = Client(url, verbose=False, download_files=False)  # the clients share this machine's CPUs
        while time.monotonic() < deadline:
            with lock:
                if issued[0] >= max_requests:
                    return
                issued[0] += 1
                image = images[issued[0] % len(images)]
            start = time.perf_counter()
            try:
                caption = client.predict(handle_file(image), api_name="/caption")[0]
                if not caption:
                    raise RuntimeError("empty caption")
            except Exception as error:  # noqa: BLE001 - every failure is counted and reported
                with lock:
                    if "queue is full" in str(error).lower():
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
    return {"clients": clients, "seconds": elapsed, "ok": len(latencies), "busy": tally["busy"],
            "failed": len(tally["failures"]), "failures": tally["failures"][:10],
            "requests_per_s": len(latencies) / elapsed,
            "p50_ms": percentile(latencies, 50) if latencies else None,
            "p95_ms": percentile(latencies, 95) if latencies else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="A running server (default: start one on 127.0.0.1)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0, help="Seconds")
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--queue-size", type=int, default=64, help="For the server this script starts")
    parser.add_argument("--output", help="Write the result as JSON here")
    args = parser.parse_args()

    from captioner.models import shipped_assets_dir

    images = sorted(str(p) for p in (shipped_assets_dir("examples") or Path(".")).glob("*.jpg"))
    if args.url:
        result = load(args.url, images, args.clients, args.duration, args.max_requests)
    else:
        from captioner.ui import UIConfig, build_app

        app = build_app(UIConfig(device="cpu", queue_size=args.queue_size))
        try:
            _, url, _ = app.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
            result = load(url, images, args.clients, args.duration, args.max_requests)
        finally:
            app.close()
            app.captioner_service.close()
    print(Table(f"Load test: {args.clients} clients for {result['seconds']:.0f} s on loopback",
                ["ok", "busy (queue full)", "failed", "requests/s", "p50 ms", "p95 ms"],
                [[result["ok"], result["busy"], result["failed"], result["requests_per_s"], result["p50_ms"] or 0,
                  result["p95_ms"] or 0]]).render())
    for failure in result["failures"]:
        print("failure:", failure)
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    sys.exit(1 if result["failed"] else 0)


if __name__ == "__main__":
    main()
