"""The shipped decoder's layers with PyTorch's own float32 products and with packed weights, side by side.

    python benchmarks/packed_layers.py                 # rows 3 (one photo), 12, 48 (16 photos x 3 beams)
    python benchmarks/packed_layers.py --rows 3 48 192

Times one call of each layer that a caption step runs (the attention LSTM cell, the
output layer, and the caption language model's one-step LSTM and output layer), as the
model has it and as :func:`captioner.packed_layers.packed_copy` makes it, alternating,
best of ``--repeats`` rounds of ``--calls`` calls, in one process.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Table  # noqa: E402

from captioner import Captioner  # noqa: E402
from captioner.packed_layers import packed_copy  # noqa: E402


def round_ms(call: Callable[[], object], calls: int) -> float:
    """Milliseconds per call over one round of ``calls`` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls * 1e3


def compare(layer: torch.nn.Module, packed: torch.nn.Module, inputs: tuple, calls: int, repeats: int) -> tuple[float, float]:
    """Best milliseconds per call of ``layer`` and ``packed`` on ``inputs``, in alternating rounds
    (a busy moment slows both alike)."""
    round_ms(lambda: (layer(*inputs), packed(*inputs)), 10)  # warm-up
    rounds = [(round_ms(lambda: layer(*inputs), calls), round_ms(lambda: packed(*inputs), calls))
              for _ in range(repeats)]
    return min(r[0] for r in rounds), min(r[1] for r in rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[3, 12, 48])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    captioner = Captioner.from_pretrained(device="cpu")
    decoder, language_model = captioner.decoder, captioner.language_model
    layers = {"attention LSTM cell": (decoder.cell, "cell"), "output layer": (decoder.output, "linear")}
    if language_model is not None:
        layers.update({"language model LSTM, one step": (language_model.lstm, "sequence"),
                       "language model output layer": (language_model.output, "linear")})
    rows_out = []
    torch.manual_seed(0)
    with torch.inference_mode():
        for name, (layer, kind) in layers.items():
            packed = packed_copy(layer)
            for rows in args.rows:
                if kind == "cell":
                    inputs = (torch.randn(rows, layer.input_size), (torch.randn(rows, layer.hidden_size),) * 2)
                elif kind == "sequence":
                    inputs = (torch.randn(rows, 1, layer.input_size), (torch.randn(1, rows, layer.hidden_size),) * 2)
                else:
                    inputs = (torch.randn(rows, layer.in_features),)
                pytorch, fast = compare(layer, packed, inputs, args.calls, args.repeats)
                rows_out.append([name, rows, f"{pytorch:.3f}", f"{fast:.3f}", f"{pytorch / fast:.1f}x"])
    print(Table(f"Packed weights: ms per call, best of {args.repeats} rounds of {args.calls} calls, "
                f"{torch.get_num_threads()} threads", ["layer", "rows", "PyTorch", "packed", "packed is"],
                rows_out).render())


if __name__ == "__main__":
    main()
