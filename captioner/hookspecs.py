"""Plugin hook specifications: what a captioner plugin may implement."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("captioner")
hookimpl = pluggy.HookimplMarker("captioner")

Register = Callable[..., None]


@hookspec
def register_encoders(register: Register) -> None:
    """Register image encoders: ``register(name, factory, config=EncoderConfig(...))``."""


@hookspec
def register_decoders(register: Register) -> None:
    """Register caption decoders: ``register(name, factory)``, factory(vocab_size, feature_dim, **hparams)."""


@hookspec
def register_postprocessors(register: Register) -> None:
    """Register caption post-processors: ``register(name, factory)``, factory(option=None)."""
