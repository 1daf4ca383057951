"""Test helpers for plugin authors.

Add ``pytest_plugins = ["captioner.testing"]`` to your ``conftest.py`` to get the
``captioner_plugin`` fixture:

>>> def test_my_encoder(captioner_plugin):
...     captioner_plugin(my_plugin_module)      # registered for this test only
...     assert "my_encoder" in captioner.list_encoders()
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import pytest

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
