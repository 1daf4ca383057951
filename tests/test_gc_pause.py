"""The garbage-collector pause around a batch's captions: re-entrant, thread-safe, always restored."""

from __future__ import annotations

import gc
import threading

import pytest
import torch

import captioner.captioner as captioner_module
from captioner.gc_pause import gc_paused


@pytest.fixture(autouse=True)
def collector_enabled():
    gc.enable()
    yield
    gc.enable()


def test_nested_pauses_restore_the_collector_only_when_the_last_ends():
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled():
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_an_exception_inside_still_restores_it():
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_overlapping_pauses_in_two_threads_leave_it_enabled():
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    enabled_after_first_left = []

    def first():
        with gc_paused():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second():
        first_in.wait(5)
        with gc_paused():
            second_in.set()
            first_out.wait(5)
            enabled_after_first_left.append(gc.isenabled())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert enabled_after_first_left == [False]  # the first thread's pause had ended, the second's had not
    assert gc.isenabled()


def test_captions_are_built_with_the_collector_paused(tiny_captioner, monkeypatch):
    seen = []
    real_decode = captioner_module.decode

    def watching_decode(*args, **kwargs):
        seen.append(gc.isenabled())
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(captioner_module, "decode", watching_decode)
    features = tiny_captioner.encode(torch.rand(2, 3, 32, 32))
    assert len(tiny_captioner.describe(features)) == 2
    assert seen == [False] and gc.isenabled()
