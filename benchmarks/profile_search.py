"""Where the search's time goes: cProfile of ``Captioner.describe`` on features already encoded.

    python benchmarks/profile_search.py                     # 512 files, batch 64, guided as shipped
    python benchmarks/profile_search.py --batch-size 16 --top 40

Loads and encodes the files first, runs the search once to warm up, then times it and
profiles a second pass, printing the functions and torch ops with the most time of
their own. Set ``CAPTIONER_BFLOAT16=0`` for the float32 features every CPU gets.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import benchmark_images  # noqa: E402

from captioner import Captioner  # noqa: E402
from captioner.batch_loader import BatchLoader  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="Model folder or shipped name (default: the shipped default)")
    parser.add_argument("--images", type=int, default=512, help="How many files (Flickr8k val if present)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--top", type=int, default=25, help="Rows of the profile to print")
    args = parser.parse_args()
    files, source = benchmark_images(args.images)
    captioner = Captioner.from_pretrained(args.model, device="cpu")
    options = captioner.decoding
    with BatchLoader(captioner.encoder_config, captioner.device) as loader:
        features = [captioner.encode(batch.pixels) for batch in loader.batches(files, args.batch_size)]
    captioner.describe(features[0], options)  # warm-up
    start = time.perf_counter()
    for batch in features:
        captioner.describe(batch, options)
    seconds = time.perf_counter() - start
    print(f"{len(files)} files from {source}, batch {args.batch_size}: "
          f"search and captions {len(files) / seconds:.1f} images/s")
    profile = cProfile.Profile()
    profile.enable()
    for batch in features:
        captioner.describe(batch, options)
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
