"""captioner benchmarks: one command, printed tables, a JSON file of every number.

    python benchmarks/run.py                      # CPU tables (peers need: pip install -e ".[bench]")
    python benchmarks/run.py --device cuda        # the same on a GPU, with mixed precision
    python benchmarks/run.py --quick --no-peers   # a smoke run (what the test suite does)

Sections: end-to-end throughput from JPEG files (batch 1/16/64 x beam 1/3, peak RSS
per run, each in its own process), open-world guidance on and off side by side, single-image latency through the Python API,
batched beam search against one image at a time, each stage alone (loading, encoder,
search) to show which one bounds the pipeline, and peers side by side.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from datetime import date
from statistics import median
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Table, benchmark_images, machine, peak_rss_mb, percentile  # noqa: E402

from captioner import Captioner  # noqa: E402
from captioner.batch_loader import BatchLoader  # noqa: E402

PEER_TOKENS = 12  # every model writes exactly this many tokens in the peer comparison


def throughput(files: list[str], batch_size: int, beam_size: int, device: str, guide: bool = True) -> dict:
    """Images/s from files to captions, in a fresh process so that its peak RSS is its own."""
    captioner = Captioner.from_pretrained(device=device)
    options = {"beam_size": beam_size, "guide": guide}
    list(captioner.caption_stream(files[: 2 * batch_size], batch_size=batch_size, **options))  # warm-up
    start = time.perf_counter()
    done = sum(r.ok for r in captioner.caption_stream(files, batch_size=batch_size, **options))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"batch_size": batch_size, "beam_size": beam_size, "guide": guide, "images": done, "seconds": seconds,
            "images_per_s": done / seconds, "peak_rss_mb": peak_rss_mb()}


def in_fresh_process(function, *args) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def latency(files: list[str], calls: int, device: str) -> dict:
    """One image per call through ``Captioner.caption``, as the web interface calls it."""
    captioner = Captioner.from_pretrained(device=device)
    for path in files[:3]:
        captioner.caption(path)
    times = []
    for path in files[:calls]:
        start = time.perf_counter()
        captioner.caption(path)
        times.append((time.perf_counter() - start) * 1000)
    return {"calls": len(times), "p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95),
            "beam_size": captioner.decoding.beam_size}


def batched_against_one_at_a_time(files: list[str], batch_size: int, device: str) -> dict:
    """The same beam search on the same features: a batch of images per call, or one image per call.

    Unguided: this measures the search itself (guidance's margin decisions can tip on
    near-ties that batch-size dependent kernels round differently).
    """
    captioner = Captioner.from_pretrained(device=device)
    with BatchLoader(captioner.encoder_config, captioner.device) as loader:
        features = [captioner.encode(batch.pixels) for batch in loader.batches(files, batch_size)]
    options = captioner.decoding.updated(guide=False)

    def timed(run):
        start = time.perf_counter()
        out = run()
        return out, time.perf_counter() - start

    batched, batched_s = timed(lambda: [c for f in features for c in captioner.decode(f, options)])
    single, single_s = timed(lambda: [captioner.decode(f.rows(slice(i, i + 1)), options)[0]
                                      for f in features for i in range(f.pooled.shape[0])])
    same = sum(a[0].text == b[0].text and abs(a[0].score - b[0].score) < 1e-4 for a, b in zip(batched, single))
    return {"images": len(batched), "beam_size": options.beam_size, "batched_images_per_s": len(batched) / batched_s,
            "one_at_a_time_images_per_s": len(single) / single_s, "speedup": single_s / batched_s,
            "same_captions": same}


def ours_like_peers(files: list[str], batch_size: int, beam_size: int, device: str) -> dict:
    captioner = Captioner.from_pretrained(device=device)
    options = {"beam_size": beam_size, "min_length": PEER_TOKENS, "max_length": PEER_TOKENS}
    list(captioner.caption_stream(files[:batch_size], batch_size=batch_size, **options))
    start = time.perf_counter()
    done = sum(r.ok for r in captioner.caption_stream(files, batch_size=batch_size, **options))
    seconds = time.perf_counter() - start
    return {"batch_size": batch_size, "images": done, "seconds": seconds, "images_per_s": done / seconds}


def stages(files: list[str], batch_size: int, device: str) -> dict:
    """Images/s of each stage alone at ``batch_size`` with the default decoding: which one bounds the pipeline.

    Loading (files to pixels on the device), the encoder (on those pixels, kept in
    memory), and the search with its finishing into captions (on those features).
    """
    captioner = Captioner.from_pretrained(device=device)
    options = captioner.decoding

    def timed(run) -> tuple[list, float]:
        start = time.perf_counter()
        out = run()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return out, time.perf_counter() - start

    with BatchLoader(captioner.encoder_config, captioner.device) as loader:
        for batch in loader.batches(files[: 2 * batch_size], batch_size):  # warm-up
            captioner.describe(captioner.encode(batch.pixels), options)
        pixels, loading_s = timed(lambda: [batch.pixels for batch in loader.batches(files, batch_size)])
    features, encoder_s = timed(lambda: [captioner.encode(p) for p in pixels])
    _, search_s = timed(lambda: [captioner.describe(f, options) for f in features])
    images = sum(p.size(0) for p in pixels)
    return {"batch_size": batch_size, "beam_size": options.beam_size, "images": images,
            "loading_images_per_s": images / loading_s, "encoder_images_per_s": images / encoder_s,
            "search_images_per_s": images / search_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", help="Folder of images (default: Flickr8k val if present, else crops)")
    parser.add_argument("--quick", action="store_true", help="Few images: checks that everything runs")
    parser.add_argument("--no-peers", action="store_true", help="Skip the transformers peers")
    parser.add_argument("--output", default="benchmarks/results.json", help="Where to write the JSON")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    scale = 0.05 if args.quick else 1.0
    size = lambda n: max(4, int(n * scale))  # noqa: E731
    files, source = benchmark_images(size(4096 if cuda else 512), args.images)
    report = {"date": str(date.today()), "device": args.device, "machine": machine(), "images": source, "sections": {}}
    print(f"captioner benchmarks, {report['date']}, device {args.device}: {report['machine']}\nimages: {source}")

    batch_sizes = (1, 64, 256, 1024) if cuda else (1, 16, 64)
    runs = [in_fresh_process(throughput, files[: size(64 if b == 1 else len(files))], b, k, args.device)
            for b in batch_sizes for k in (1, 3)]
    report["sections"]["throughput"] = runs
    print(Table("1. End to end, JPEG files to captions" + (" (bf16 autocast)" if cuda else ""),
                ["batch", "beam", "images", "images/s", "peak RSS MiB"],
                [[r["batch_size"], r["beam_size"], r["images"], r["images_per_s"], r["peak_rss_mb"]] for r in runs]
                ).render())

    guidance_batch = 256 if cuda else 16
    pairs = [in_fresh_process(throughput, files, guidance_batch, 3, args.device, guide)
             for _ in range(1 if args.quick else 2) for guide in (False, True)]
    unguided = [r["images_per_s"] for r in pairs if not r["guide"]]
    guided = [r["images_per_s"] for r in pairs if r["guide"]]
    report["sections"]["guidance"] = pairs
    print(Table(f"1b. Open-world guidance, side by side: end to end, batch {guidance_batch}, beam 3 (alternating runs)",
                ["guidance", "runs", "images/s (median)", "of unguided"],
                [["off", len(unguided), median(unguided), "100%"],
                 ["on (default)", len(guided), median(guided), f"{median(guided) / median(unguided):.0%}"]]).render())

    lat = latency(files, size(100), args.device)
    report["sections"]["latency"] = lat
    print(Table("2. One image per call through the Python API", ["calls", "beam", "p50 ms", "p95 ms"],
                [[lat["calls"], lat["beam_size"], lat["p50_ms"], lat["p95_ms"]]]).render())

    beam = batched_against_one_at_a_time(files[: size(256)], 64, args.device)
    report["sections"]["beam_search"] = beam
    print(Table("3. Batched beam search against one image at a time (same features, same rules, unguided)",
                ["images", "beam", "batched img/s", "one-at-a-time img/s", "speedup", "same captions"],
                [[beam["images"], beam["beam_size"], beam["batched_images_per_s"], beam["one_at_a_time_images_per_s"],
                  f"{beam['speedup']:.1f}x", f"{beam['same_captions']}/{beam['images']}"]]).render())

    stage_batch = 1024 if cuda else 64
    parts = in_fresh_process(stages, files, stage_batch, args.device)
    report["sections"]["stages"] = parts
    whole = next(r["images_per_s"] for r in runs if r["batch_size"] == stage_batch and r["beam_size"] == 3)
    rows = [["loading (files to model-ready pixels)", parts["loading_images_per_s"]],
            ["encoder" + (" (bf16)" if cuda else ""), parts["encoder_images_per_s"]],
            ["search and captions (guided, as shipped)", parts["search_images_per_s"]],
            ["whole pipeline (table 1)", whole]]
    print(Table(f"4. Each stage alone, batch {stage_batch}, beam {parts['beam_size']}: the slowest bounds the pipeline",
                ["stage", "images/s"], rows).render())

    if args.no_peers:
        print("\n5. Peers: skipped (--no-peers)")
    else:
        from peers import PEERS, run_peer

        peer_files = files[: size(1024 if cuda else 48)]
        peer_batches = [64, 256] if cuda else [16]
        ours = {b: ours_like_peers(peer_files, b, 3, args.device) for b in peer_batches}
        peers = {name: in_fresh_process(run_peer, name, peer_files, peer_batches, 3, PEER_TOKENS, args.device)
                 for name in PEERS}
        rows = []
        for i, batch in enumerate(peer_batches):
            rows.append(["captioner (EfficientNet-Lite0 + attention LSTM)", batch, ours[batch]["images_per_s"], "1.0x"])
            for name, results in peers.items():
                speed = results[i]["images_per_s"]
                rows.append([name, batch, speed, f"{ours[batch]['images_per_s'] / speed:.1f}x faster"])
        report["sections"]["peers"] = {"beam_size": 3, "tokens": PEER_TOKENS,
                                       "captioner": list(ours.values()), **peers}
        print(Table(f"5. Peers: same {len(peer_files)} images, beam 3, exactly {PEER_TOKENS} tokens",
                    ["model", "batch", "images/s", "captioner is"], rows).render())

    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
