"""A plain one-image-at-a-time beam search, written for clarity, used as the test oracle.

It follows the same rules as the batched search (documented in captioner.decoding.beam)
with Python lists and one decoder row per beam.
"""

from __future__ import annotations

import torch

from captioner import DecodingOptions
from captioner.encoder import EncoderOutput

NEG_INF = float("-inf")


def allowed(tokens: list[int], step: int, vocab_size: int, options: DecodingOptions, end_id: int, banned) -> list[bool]:
    ok = [v not in banned for v in range(vocab_size)]
    if step <= options.min_length:
        ok[end_id] = False
    n = options.no_repeat_ngram_size
    if n:
        seen = {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}
        prefix = tuple(tokens[len(tokens) - n + 1 :]) if n > 1 else ()
        for v in range(vocab_size):
            if len(tokens) >= n - 1 and prefix + (v,) in seen:
                ok[v] = False
    if not any(ok):
        ok[end_id] = True
    return ok


@torch.inference_mode()
def reference_beam_search(decoder, features: EncoderOutput, options: DecodingOptions, start_id, end_id, banned):
    """Beam search on one image (``features`` has one row); returns (tokens, score, logprob, finished) tuples."""
    k, lp, max_length = options.beam_size, options.length_penalty, options.max_length
    zero = torch.zeros((), dtype=features.pooled.dtype)
    beams = [(zero, [], decoder.init_state(features))]  # (logprob, tokens, state of one row)
    finished = []  # (score, logprob, tokens)
    steps = 0
    for step in range(1, max_length + 1):
        steps = step
        candidates = []
        for beam_index, (logprob, tokens, state) in enumerate(beams):
            previous = torch.tensor([tokens[-1] if tokens else start_id])
            out = decoder.step(previous, state)
            logprobs = torch.log_softmax(out.logits.to(zero.dtype), dim=-1)[0]
            ok = allowed(tokens, step, logprobs.numel(), options, end_id, banned)
            for v in range(logprobs.numel()):
                if ok[v]:
                    candidates.append((logprob + logprobs[v], beam_index, v, out.state))
        candidates.sort(key=lambda c: -float(c[0]))
        next_beams = []
        for rank, (score, beam_index, v, state) in enumerate(candidates[: 2 * k]):
            tokens = beams[beam_index][1]
            if v == end_id:
                if rank < k:
                    finished.append((score / float(step) ** lp, score, tokens))
            elif len(next_beams) < k:
                next_beams.append((score, tokens + [v], state))
        finished = sorted(finished, key=lambda f: -float(f[0]))[:k]
        beams = next_beams
        if not beams:
            break
        bound = float(max_length) ** lp if lp > 0 else float(step + 1) ** lp
        if len(finished) == k and float(max(b[0] for b in beams) / bound) <= float(finished[-1][0]):
            break
    n_best = min(options.n_best or k, k)
    if finished:
        return [(tokens, float(score), float(logprob), True) for score, logprob, tokens in finished][:n_best]
    live = sorted(beams, key=lambda b: -float(b[0]))
    return [(tokens, float(lp_ / float(steps) ** lp), float(lp_), False) for lp_, tokens, _ in live][:n_best]
