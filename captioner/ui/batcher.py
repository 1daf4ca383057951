"""Dynamic batching: concurrent caption requests share one forward pass."""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from ..captioner import Captioner
from ..results import CaptionResult


@dataclass
class Request:
    captioner: Captioner
    image: torch.Tensor  # decoded RGB uint8 (3, H, W), checked by the caller
    name: str
    options: tuple[tuple[str, Any], ...]
    postprocess: tuple[str, ...]
    future: Future = field(default_factory=Future)

    @property
    def group(self) -> tuple[int, tuple[tuple[str, Any], ...], tuple[str, ...]]:
        return id(self.captioner), self.options, self.postprocess


class CaptionBatcher:
    """One worker thread; requests that arrive while it works are captioned together next.

    Requests are grouped by model, decoding options and post-processors, so each
    group is one ``Captioner.caption`` call. A bad image never reaches it (callers
    decode first), so one request cannot fail the others.
    """

    def __init__(self, max_batch_size: int = 16, max_wait_s: float = 0.005) -> None:
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.batch_sizes: list[int] = []  # size of every forward pass, for tests and monitoring
        self._queue: queue.Queue[Request | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="caption-batcher", daemon=True)
        self._worker.start()

    def caption(self, captioner: Captioner, image: torch.Tensor, name: str, options: dict[str, Any],
                postprocess: tuple[str, ...] = (), timeout: float | None = None) -> CaptionResult:
        """Caption one decoded image; blocks until its batch is done."""
        request = Request(captioner, image, name, tuple(sorted(options.items())), tuple(postprocess))
        self._queue.put(request)
        return request.future.result(timeout=timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=10)

    def _collect(self, first: Request) -> list[Request]:
        batch = [first]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch_size:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)
                break
            batch.append(item)
        return batch

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            groups: dict[Any, list[Request]] = {}
            for request in self._collect(first):
                groups.setdefault(request.group, []).append(request)
            for requests in groups.values():
                self._run_group(requests)

    def _run_group(self, requests: list[Request]) -> None:
        head = requests[0]
        self.batch_sizes.append(len(requests))
        try:
            results = head.captioner.caption([r.image for r in requests], batch_size=len(requests),
                                             postprocess=head.postprocess, **dict(head.options))
        except Exception as error:
            if len(requests) > 1:  # one image may have tripped a plugin: retry alone so only its request fails
                for request in requests:
                    self._run_group([request])
                return
            head.future.set_exception(error)
            return
        for request, result in zip(requests, results):
            result.image = request.name
            request.future.set_result(result)
