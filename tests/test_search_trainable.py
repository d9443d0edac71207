"""A search worker's heap after a trial: cyclic garbage collected, survivors frozen."""

import gc
import weakref

from search.trainable import settle_heap


class _Node:
    pass


def test_settle_heap_collects_cycles_and_freezes_the_survivors():
    garbage = _Node()
    garbage.me = garbage  # a cycle: only the cyclic collector frees it
    gone = weakref.ref(garbage)
    del garbage
    survivor = [_Node()]
    try:
        settle_heap()
        assert gone() is None
        assert gc.get_freeze_count() > 0
        assert not any(o is survivor for o in gc.get_objects())  # frozen: outside every generation
    finally:
        gc.unfreeze()
    assert any(o is survivor for o in gc.get_objects())
