"""How long a fresh process waits for its first caption, with and without warming the model up.

    python benchmarks/first_caption.py                  # the converted encoder already cached
    python benchmarks/first_caption.py --empty-cache    # a machine's very first start

Each round starts two fresh processes, one after the other: one loads the shipped
default and captions two example photos; the other calls ``Captioner.warm_up()``
(what ``captioner ui`` does for every model it loads) before the same two photos.
``--empty-cache`` gives each process an empty cache folder, so the encoder is
converted for OpenVINO again, as on a machine's first start.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ("assets/examples/cat.jpg", "assets/examples/astronaut.jpg")
ONE_PROCESS = """
import json, sys, time
started = time.perf_counter()
from captioner import Captioner
captioner = Captioner.from_pretrained()
times = {"load_s": time.perf_counter() - started}
started = time.perf_counter()
if sys.argv[1] == "warmed up":
    captioner.warm_up()
times["warm_up_s"] = time.perf_counter() - started
for name, photo in zip(("first_photo_s", "second_photo_s"), sys.argv[2:]):
    started = time.perf_counter()
    captioner.caption(photo)
    times[name] = time.perf_counter() - started
print(json.dumps(times))
"""


def one_process(mode: str, cache: str | None) -> dict[str, float]:
    env = {**os.environ, **({"XDG_CACHE_HOME": cache} if cache else {})}
    done = subprocess.run([sys.executable, "-c", ONE_PROCESS, mode, *PHOTOS], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--empty-cache", action="store_true", help="Each process starts with an empty cache folder")
    args = parser.parse_args()

    table = Table("Seconds in a fresh process (the shipped default)",
                  ["round", "mode", "load", "warm-up", "first photo", "second photo"], [])
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(1, args.rounds + 1):
            for mode in ("as loaded", "warmed up"):
                cache = str(Path(folder, f"{round_}-{mode.replace(' ', '-')}")) if args.empty_cache else None
                times = one_process(mode, cache)
                table.rows.append([round_, mode, times["load_s"], times["warm_up_s"], times["first_photo_s"],
                                   times["second_photo_s"]])
    print(table.render())


if __name__ == "__main__":
    main()
