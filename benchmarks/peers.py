"""The peers: Hugging Face captioners with their usual architectures, randomly initialised.

These machines cannot download weights, and speed does not depend on weight values:
a random ViT-base + GPT-2 (the architecture of the usual ``image-to-text`` pipeline
model) and a random BLIP-base run the same computation as the trained ones. They run
under bfloat16 autocast wherever captioner's encoder does (``fast_bfloat16``: CUDA, CPUs
with AMX), so that every model gets the same help from the hardware; on such a CPU
they also run in float32, as they would by default.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from PIL import Image

from captioner.device import fast_bfloat16


def build_vit_gpt2() -> tuple[Any, Any]:
    from transformers import GPT2Config, VisionEncoderDecoderConfig, VisionEncoderDecoderModel, ViTConfig, ViTImageProcessor

    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(ViTConfig(), GPT2Config(add_cross_attention=True))
    config.decoder_start_token_id = config.eos_token_id = 50256
    config.pad_token_id = 0  # not the end token: transformers would otherwise warn about attention masks
    torch.manual_seed(0)
    model = VisionEncoderDecoderModel(config=config)
    model.generation_config.decoder_start_token_id = model.generation_config.eos_token_id = 50256
    model.generation_config.pad_token_id = 0
    return model.eval(), ViTImageProcessor()


def build_blip() -> tuple[Any, Any]:
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor

    torch.manual_seed(0)
    return BlipForConditionalGeneration(BlipConfig()).eval(), BlipImageProcessor()


PEERS = {"ViT-base + GPT-2 (transformers)": build_vit_gpt2, "BLIP-base (transformers)": build_blip}


@torch.inference_mode()
def caption_files(model: Any, processor: Any, files: list[str], batch_size: int, beam_size: int, tokens: int,
                  device: str, bf16: bool) -> int:
    """Files -> PIL -> the model's processor -> beam search of exactly ``tokens`` new tokens; returns captions made."""
    made = 0
    for start in range(0, len(files), batch_size):
        images = []
        for path in files[start : start + batch_size]:
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
        pixels = processor(images=images, return_tensors="pt")["pixel_values"].to(device)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            out = model.generate(pixel_values=pixels, num_beams=beam_size, min_new_tokens=tokens,
                                 max_new_tokens=tokens, do_sample=False)
        made += out.shape[0]
    return made


def precisions(device: str) -> list[bool]:
    """Whether to run under bfloat16 autocast: as captioner does (``fast_bfloat16``) and,
    on a CPU where that means bfloat16, also in float32, the peers' own default there."""
    fast = fast_bfloat16(torch.device(device))
    return [False, True] if fast and device == "cpu" else [fast]


def run_peer(name: str, files: list[str], batch_sizes: list[int], beam_size: int, tokens: int, device: str) -> list[dict]:
    """Images/s of peer ``name`` at each batch size and precision (one model build for all)."""
    model, processor = PEERS[name]()
    model.to(device)
    results = []
    for bf16 in precisions(device):
        for batch_size in batch_sizes:
            caption_files(model, processor, files[:batch_size], batch_size, beam_size, tokens, device, bf16)  # warm-up
            start = time.perf_counter()
            made = caption_files(model, processor, files, batch_size, beam_size, tokens, device, bf16)
            seconds = time.perf_counter() - start
            results.append({"batch_size": batch_size, "bf16": bf16, "images": made, "seconds": seconds,
                            "images_per_s": made / seconds})
    return results
