"""SIGINT/SIGTERM handling of the driver, without Ray: a first signal is a stop request, a
second leaves at once; handlers are restored afterwards."""

import os
import signal

import pytest

from search.errors import Interrupted
from search.signals import StopRequests, raise_on_sigterm


def test_first_signal_requests_a_stop_second_leaves():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequests() as stops:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stops.signum == signal.SIGTERM and stops.exit_code == 143
        with pytest.raises(Interrupted) as e:
            os.kill(os.getpid(), signal.SIGINT)
        assert e.value.signum == signal.SIGINT
        assert os.environ["TUNE_DISABLE_SIGINT_HANDLER"] == "1"  # Tune must not take SIGINT over
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigint_exit_code_is_130():
    with StopRequests() as stops:
        os.kill(os.getpid(), signal.SIGINT)
    assert stops.exit_code == 130


def test_sigterm_outside_tune_raises_interrupted():
    before = signal.getsignal(signal.SIGTERM)
    try:
        raise_on_sigterm()
        with pytest.raises(Interrupted) as e:
            os.kill(os.getpid(), signal.SIGTERM)
        assert isinstance(e.value, KeyboardInterrupt) and e.value.signum == signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, before)
