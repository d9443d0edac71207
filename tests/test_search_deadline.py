"""The per-trial deadline stops a trial stuck inside an epoch, and never fires late."""

import threading
import time

import pytest
import torch

from search.deadline import Deadline, TrialTimeoutError


def test_deadline_interrupts_a_busy_torch_loop():
    start = time.monotonic()
    x = torch.randn(64, 64)
    with pytest.raises(TrialTimeoutError), Deadline(0.3):
        while True:
            x = torch.tanh(x @ x)
    assert 0.3 <= time.monotonic() - start < 2.0


def test_deadline_does_not_fire_after_the_block():
    with Deadline(0.1):
        pass
    time.sleep(0.3)  # a stray async exception would be raised here


def test_deadline_in_a_worker_thread_only_hits_that_thread():
    caught = []

    def work():
        try:
            with Deadline(0.2):
                while True:
                    sum(range(100))
        except TrialTimeoutError:
            caught.append(True)

    t = threading.Thread(target=work)
    t.start()
    time.sleep(0.5)  # the main thread is not interrupted
    t.join(5)
    assert caught == [True]


def test_no_limit_means_no_timer():
    with Deadline(None) as d:
        assert d._timer is None
