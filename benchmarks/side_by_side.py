"""Two or more variants of captioner, timed side by side: alternating runs, each in a fresh process.

    python benchmarks/side_by_side.py --variant before=/tmp/old-checkout --variant after=.
    python benchmarks/side_by_side.py --variant float32=.:CAPTIONER_BFLOAT16=0 --variant bfloat16=.

A variant is ``NAME=CHECKOUT`` with optional ``:VAR=VALUE`` environment settings; each
run imports captioner and ``benchmarks/run.py``'s ``throughput`` from that checkout, so
a before/after comparison measures the code alone on the same machine state.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Table, benchmark_images  # noqa: E402

ONE_RUN = """
import json, sys
checkout, files = sys.argv[1], json.loads(sys.argv[2])
sys.path[:0] = [checkout, checkout + "/benchmarks"]
import captioner, run
assert captioner.__file__.startswith(checkout), f"captioner came from {captioner.__file__}, not {checkout}"
print(json.dumps(run.throughput(files, int(sys.argv[3]), int(sys.argv[4]), "cpu", sys.argv[5] == "on")))
"""


def parse_variant(spec: str) -> tuple[str, str, dict[str, str]]:
    name, _, rest = spec.partition("=")
    checkout, *settings = rest.split(":")
    if not name or not checkout:
        raise argparse.ArgumentTypeError(f"--variant {spec!r} is not NAME=CHECKOUT[:VAR=VALUE...]")
    env = dict(setting.split("=", 1) for setting in settings)
    return name, str(Path(checkout).resolve()), env


def one_run(checkout: str, env: dict[str, str], files: list[str], batch: int, beam: int, guide: bool) -> dict:
    """``benchmarks/run.py``'s throughput of one variant in a fresh process: images/s, peak RSS, ..."""
    done = subprocess.run([sys.executable, "-c", ONE_RUN, checkout, json.dumps(files), str(batch), str(beam),
                           "on" if guide else "off"], env={**os.environ, **env}, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", type=parse_variant, required=True)
    parser.add_argument("--images", type=int, default=512, help="How many files (Flickr8k val if present)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--beam-size", type=int, default=3)
    parser.add_argument("--no-guide", action="store_true", help="Open-world guidance off")
    parser.add_argument("--runs", type=int, default=2, help="Runs of each variant, alternating")
    args = parser.parse_args()
    files, source = benchmark_images(args.images)
    speeds: dict[str, list[float]] = {name: [] for name, _, _ in args.variant}
    peak_rss: dict[str, float] = dict.fromkeys(speeds, 0.0)
    for _ in range(args.runs):
        for name, checkout, env in args.variant:
            run = one_run(checkout, env, files, args.batch_size, args.beam_size, not args.no_guide)
            speeds[name].append(run["images_per_s"])
            peak_rss[name] = max(peak_rss[name], run["peak_rss_mb"])
    first, first_best = mean(speeds[args.variant[0][0]]), max(speeds[args.variant[0][0]])
    guide = "off" if args.no_guide else "on"
    print(f"images: {len(files)} from {source}")
    print(Table(f"Side by side: batch {args.batch_size}, beam {args.beam_size}, guidance {guide}, "
                f"{args.runs} alternating runs each",
                ["variant", "images/s (each run)", "mean", f"of {args.variant[0][0]} (mean)", "best",
                 f"of {args.variant[0][0]} (best)", "peak RSS MiB"],
                [[name, ", ".join(f"{s:.1f}" for s in runs), mean(runs), f"{mean(runs) / first:.0%}", max(runs),
                  f"{max(runs) / first_best:.0%}", peak_rss[name]]
                 for name, runs in speeds.items()]).render())


if __name__ == "__main__":
    main()
