"""Start the web interface on loopback for a test, and stop it after."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from captioner.ui import UIConfig, build_app, launch

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"  # the shipped example photos
CAT = EXAMPLES / "cat.jpg"
COFFEE = EXAMPLES / "coffee.jpg"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_app(config: UIConfig | None = None, **options) -> Iterator[tuple[str, object]]:
    """``(url, app)`` for a server on 127.0.0.1; closed (with its temporary files) on exit."""
    config = config or UIConfig(device="cpu")
    app = build_app(config)
    try:
        _, url, _ = launch(app, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                           quiet=True, **options)
        yield url, app
    finally:
        app.close()
        app.captioner_service.close()


def wait_until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """Return once ``condition()`` holds (checked every 20 ms); fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {condition}")
        threading.Event().wait(0.02)
