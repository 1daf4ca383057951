"""captioner benchmarks: one command, printed tables, a JSON file of every number.

    python benchmarks/run.py                      # CPU tables (peers need: pip install -e ".[bench]")
    python benchmarks/run.py --device cuda        # the same on a GPU, with mixed precision
    python benchmarks/run.py --quick --no-peers   # a smoke run (what the test suite does)
    python benchmarks/run.py --device cuda --sections stages,peers   # only some sections
    python benchmarks/run.py --model flickr8k-ensemble --sections throughput,peers   # another model

Sections: end-to-end throughput from JPEG files (batch 1/16/64 x beam 1/3, peak RSS
per run, each in its own process), open-world guidance on and off side by side,
single-image latency through the Python API, batched beam search against one image at
a time, each stage alone (loading, encoder, search) to show which one bounds the
pipeline, and peers side by side. The JSON file is rewritten after every section.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from statistics import median

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Table, benchmark_images, machine, peak_rss_mb, percentile  # noqa: E402

from captioner import Captioner  # noqa: E402
from captioner.batch_loader import BatchLoader  # noqa: E402
from captioner.device import fast_bfloat16  # noqa: E402
from captioner.model_catalog import DEFAULT_MODEL  # noqa: E402

PEER_TOKENS = 12  # every model writes exactly this many tokens in the peer comparison


def throughput(files: list[str], batch_size: int, beam_size: int, device: str, guide: bool = True,
               model: str | None = None) -> dict:
    """Images/s from files to captions, in a fresh process so that its peak RSS is its own."""
    captioner = Captioner.from_pretrained(model, device=device)
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


def latency(files: list[str], calls: int, device: str, model: str | None = None) -> dict:
    """One image per call through ``Captioner.caption``, as the web interface calls it."""
    captioner = Captioner.from_pretrained(model, device=device)
    for path in files[:3]:
        captioner.caption(path)
    times = []
    for path in files[:calls]:
        start = time.perf_counter()
        captioner.caption(path)
        times.append((time.perf_counter() - start) * 1000)
    return {"calls": len(times), "p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95),
            "beam_size": captioner.decoding.beam_size}


def batched_against_one_at_a_time(files: list[str], batch_size: int, device: str, model: str | None = None) -> dict:
    """The same beam search on the same features: a batch of images per call, or one image per call.

    Unguided: this measures the search itself (guidance's margin decisions can tip on
    near-ties that batch-size dependent kernels round differently).
    """
    captioner = Captioner.from_pretrained(model, device=device)
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


def ours_like_peers(files: list[str], batch_size: int, beam_size: int, device: str, model: str | None = None,
                    openvino: bool = True, decoder_weights: str | None = None) -> dict:
    """Images/s writing exactly the peers' number of tokens; ``openvino`` False keeps the encoder in
    PyTorch, ``decoder_weights`` ("float32", "int8") overrides ``CAPTIONER_DECODER_WEIGHTS``."""
    captioner = Captioner.from_pretrained(model, device=device)
    captioner.openvino = openvino and captioner.openvino
    if decoder_weights is not None and captioner.device.type == "cpu":
        captioner.decoder_weights = decoder_weights
    options = {"beam_size": beam_size, "min_length": PEER_TOKENS, "max_length": PEER_TOKENS}
    list(captioner.caption_stream(files[:batch_size], batch_size=batch_size, **options))
    start = time.perf_counter()
    done = sum(r.ok for r in captioner.caption_stream(files, batch_size=batch_size, **options))
    seconds = time.perf_counter() - start
    return {"batch_size": batch_size, "images": done, "seconds": seconds, "images_per_s": done / seconds,
            "encoder": "OpenVINO" if captioner.openvino else "PyTorch", "decoder_weights": captioner.decoder_weights}


def stages(files: list[str], batch_size: int, device: str, model: str | None = None) -> dict:
    """Images/s of each stage alone at ``batch_size`` with the default decoding: which one bounds the pipeline.

    Loading (files to pixels on the device), the encoder (on those pixels, kept in
    memory), and the search with its finishing into captions (on those features).
    """
    captioner = Captioner.from_pretrained(model, device=device)
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
            "search_images_per_s": images / search_s, "encoder": "OpenVINO" if captioner.openvino else "PyTorch",
            "decoder_weights": captioner.decoder_weights}


@dataclass
class Run:
    """What every section needs: the device, the files, the sizes, and the report so far."""

    device: str
    files: list[str]
    quick: bool
    report: dict
    model: str | None = None  # a model folder or shipped name; None: the default model

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def bf16(self) -> bool:  # captioner's encoder runs under bf16 autocast there
        return fast_bfloat16(torch.device(self.device))

    def size(self, n: int) -> int:
        return scaled(n, self.quick)


def scaled(n: int, quick: bool) -> int:
    """``n`` images, or 5% of them (at least 4) for a quick run."""
    return max(4, int(n * (0.05 if quick else 1.0)))


def section_throughput(run: Run) -> None:
    batch_sizes = (1, 64, 256, 1024) if run.cuda else (1, 16, 64)
    runs = [in_fresh_process(throughput, run.files[: run.size(64 if b == 1 else len(run.files))], b, k, run.device,
                            True, run.model)
            for b in batch_sizes for k in (1, 3)]
    run.report["sections"]["throughput"] = runs
    print(Table("1. End to end, JPEG files to captions" + (" (encoder under bf16 autocast)" if run.bf16 else ""),
                ["batch", "beam", "images", "images/s", "peak RSS MiB"],
                [[r["batch_size"], r["beam_size"], r["images"], r["images_per_s"], r["peak_rss_mb"]] for r in runs]
                ).render())


def section_guidance(run: Run) -> None:
    batch = 256 if run.cuda else 16
    pairs = [in_fresh_process(throughput, run.files, batch, 3, run.device, guide, run.model)
             for _ in range(1 if run.quick else 2) for guide in (False, True)]
    unguided = [r["images_per_s"] for r in pairs if not r["guide"]]
    guided = [r["images_per_s"] for r in pairs if r["guide"]]
    run.report["sections"]["guidance"] = pairs
    print(Table(f"1b. Open-world guidance, side by side: end to end, batch {batch}, beam 3 (alternating runs)",
                ["guidance", "runs", "images/s (median)", "of unguided"],
                [["off", len(unguided), median(unguided), "100%"],
                 ["on (default)", len(guided), median(guided), f"{median(guided) / median(unguided):.0%}"]]).render())


def section_latency(run: Run) -> None:
    lat = latency(run.files, run.size(100), run.device, run.model)
    run.report["sections"]["latency"] = lat
    print(Table("2. One image per call through the Python API", ["calls", "beam", "p50 ms", "p95 ms"],
                [[lat["calls"], lat["beam_size"], lat["p50_ms"], lat["p95_ms"]]]).render())


def section_beam_search(run: Run) -> None:
    beam = batched_against_one_at_a_time(run.files[: run.size(256)], 64, run.device, run.model)
    run.report["sections"]["beam_search"] = beam
    print(Table("3. Batched beam search against one image at a time (same features, same rules, unguided)",
                ["images", "beam", "batched img/s", "one-at-a-time img/s", "speedup", "same captions"],
                [[beam["images"], beam["beam_size"], beam["batched_images_per_s"], beam["one_at_a_time_images_per_s"],
                  f"{beam['speedup']:.1f}x", f"{beam['same_captions']}/{beam['images']}"]]).render())


def section_stages(run: Run) -> None:
    batch = 1024 if run.cuda else 64
    parts = in_fresh_process(stages, run.files, batch, run.device, run.model)
    run.report["sections"]["stages"] = parts
    rows = [["loading (files to model-ready pixels)", parts["loading_images_per_s"]],
            [f"encoder ({parts['encoder']}{', bfloat16' if run.bf16 else ''})", parts["encoder_images_per_s"]],
            [f"search and captions (guided, as shipped, {parts['decoder_weights']} decoder weights)",
             parts["search_images_per_s"]]]
    whole = [r["images_per_s"] for r in run.report["sections"].get("throughput", [])
             if r["batch_size"] == batch and r["beam_size"] == 3]
    rows += [["whole pipeline (table 1)", whole[0]]] if whole else []
    print(Table(f"4. Each stage alone, batch {batch}, beam {parts['beam_size']}: the slowest bounds the pipeline",
                ["stage", "images/s"], rows).render())


def section_peers(run: Run) -> None:
    from peers import PEERS, run_peer

    files = run.files[: run.size(1024 if run.cuda else 48)]
    batches = [64, 256] if run.cuda else [16]
    ours = {b: ours_like_peers(files, b, 3, run.device, run.model) for b in batches}
    # The CPU levers side by side: OpenVINO turned off, the decoder's weights unpacked (PyTorch's
    # own float32 products), and the int8 decoder (not the default) turned on.
    eager = ({b: ours_like_peers(files, b, 3, run.device, run.model, openvino=False) for b in batches}
             if ours[batches[0]]["encoder"] == "OpenVINO" else {})
    unpacked = ({b: ours_like_peers(files, b, 3, run.device, run.model, decoder_weights="float32") for b in batches}
                if ours[batches[0]]["decoder_weights"] == "packed" else {})
    int8 = ({b: ours_like_peers(files, b, 3, run.device, run.model, decoder_weights="int8") for b in batches}
            if not run.cuda and ours[batches[0]]["decoder_weights"] != "int8" else {})
    peers = {name: in_fresh_process(run_peer, name, files, batches, 3, PEER_TOKENS, run.device) for name in PEERS}
    rows = []
    precision = "bf16 encoder" if run.bf16 else "fp32"
    for batch in batches:
        speed = ours[batch]["images_per_s"]
        shipped = f"{ours[batch]['encoder']} encoder, {ours[batch]['decoder_weights']} decoder weights"
        rows.append([f"captioner ({run.model or DEFAULT_MODEL}), {shipped}", batch, precision, speed, "1.0x"])
        for lever, results in (("PyTorch encoder", eager), ("float32 decoder weights, unpacked", unpacked),
                               ("int8 decoder weights", int8)):
            if batch in results:
                ratio = speed / results[batch]["images_per_s"]
                rows.append([f"captioner ({run.model or DEFAULT_MODEL}), {lever}", batch, precision,
                             results[batch]["images_per_s"],
                             f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"])
        for name, results in peers.items():
            for result in (r for r in results if r["batch_size"] == batch):
                rows.append([name, batch, "bf16 autocast" if result["bf16"] else "fp32", result["images_per_s"],
                             f"{speed / result['images_per_s']:.1f}x faster"])
    run.report["sections"]["peers"] = {"beam_size": 3, "tokens": PEER_TOKENS, "captioner": list(ours.values()),
                                       "captioner_pytorch_encoder": list(eager.values()),
                                       "captioner_unpacked_decoder": list(unpacked.values()),
                                       "captioner_int8_decoder": list(int8.values()), **peers}
    print(Table(f"5. Peers: same {len(files)} images, beam 3, exactly {PEER_TOKENS} tokens",
                ["model", "batch", "precision", "images/s", "captioner is"], rows).render())


SECTIONS = {"throughput": section_throughput, "guidance": section_guidance, "latency": section_latency,
            "beam_search": section_beam_search, "stages": section_stages, "peers": section_peers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", help=f"Model folder or shipped name (default: {DEFAULT_MODEL})")
    parser.add_argument("--images", help="Folder of images (default: Flickr8k val if present, else crops)")
    parser.add_argument("--quick", action="store_true", help="Few images: checks that everything runs")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"Comma-separated sections to run (default: all): {','.join(SECTIONS)}")
    parser.add_argument("--no-peers", action="store_true", help="Skip the transformers peers")
    parser.add_argument("--output", default="benchmarks/results.json", help="Where to write the JSON")
    args = parser.parse_args()
    wanted = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    if args.no_peers:
        wanted = [name for name in wanted if name != "peers"]
    cuda = args.device.startswith("cuda")
    files, source = benchmark_images(scaled(4096 if cuda else 512, args.quick), args.images)
    report = {"date": str(date.today()), "device": args.device, "model": args.model or DEFAULT_MODEL,
              "machine": machine(), "images": source, "sections": {}}
    print(f"captioner benchmarks, {report['date']}, device {args.device}: {report['machine']}\n"
          f"model: {report['model']}\nimages: {source}")
    run = Run(args.device, files, args.quick, report, args.model)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    for name in SECTIONS:
        if name in wanted:
            SECTIONS[name](run)
            output.write_text(json.dumps(report, indent=2) + "\n")  # after every section: a run cut short keeps them
        elif name == "peers":
            print("\n5. Peers: skipped")
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
