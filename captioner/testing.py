"""Test helpers for plugin authors.

Add ``pytest_plugins = ["captioner.testing"]`` to your ``conftest.py`` to get the
``captioner_plugin`` fixture:

>>> def test_my_encoder(captioner_plugin):
...     captioner_plugin(my_plugin_module)      # registered for this test only
...     assert "my_encoder" in captioner.list_encoders()

and ``tiny_flickr``, a Flickr8k-style folder of random photos to train on for a few
steps (:func:`write_tiny_flickr` makes one outside pytest).

PYTEST_DONT_REWRITE (it holds fixtures, not assertions, and may be imported first)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .plugins import register_plugin, unregister_plugin


@contextmanager
def registered_plugin(plugin: object, name: str | None = None) -> Iterator[str]:
    """Register ``plugin`` (a module or object with ``@hookimpl`` functions) inside a ``with`` block."""
    registered = register_plugin(plugin, name)
    try:
        yield registered
    finally:
        unregister_plugin(registered)


@pytest.fixture
def captioner_plugin() -> Iterator[Callable[..., str]]:
    """Call it with a plugin object to register it until the test ends; returns the plugin name."""
    names: list[str] = []

    def register(plugin: object, name: str | None = None) -> str:
        names.append(register_plugin(plugin, name))
        return names[-1]

    yield register
    for name in reversed(names):
        unregister_plugin(name)


TINY_CAPTIONS = ["a dog runs on the grass", "a cat sits on a red ball", "two dogs play in the grass", "a red ball on grass"]


def random_photo(seed: int, size: tuple[int, int] = (40, 56)) -> np.ndarray:
    """A small random RGB image ``(H, W, 3)``, uint8."""
    return np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)


def write_tiny_flickr(root: str | Path) -> Path:
    """A Flickr8k-style folder at ``root``: 8 random photos, 2 captions each, 6 train and 2 val."""
    root = Path(root)
    (root / "images").mkdir(parents=True)
    (root / "splits").mkdir()
    lines = ["image,caption"]
    names = [f"img{i}.jpg" for i in range(8)]
    for i, name in enumerate(names):
        Image.fromarray(random_photo(100 + i)).save(root / "images" / name)
        lines += [f"{name},{TINY_CAPTIONS[i % 4]} .", f'{name},"{TINY_CAPTIONS[(i + 1) % 4]}, really ."']
    (root / "captions.txt").write_text("\n".join(lines) + "\n")
    (root / "splits" / "Flickr_8k.trainImages.txt").write_text("\n".join(names[:6]) + "\n")
    (root / "splits" / "Flickr_8k.devImages.txt").write_text("\n".join(names[6:]) + "\n")
    return root


@pytest.fixture
def tiny_flickr(tmp_path: Path) -> Path:
    """A Flickr8k-style folder (see :func:`write_tiny_flickr`), for training a plugin's parts a few steps."""
    return write_tiny_flickr(tmp_path / "flickr")
