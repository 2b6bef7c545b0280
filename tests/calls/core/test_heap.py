"""The startup heap is frozen out of the collector's reach; what is made later is still collected."""

from __future__ import annotations

import gc
import weakref

from calls.core import heap


def test_the_startup_heap_is_frozen_and_later_cycles_are_still_collected():
    assert heap.freeze_startup_heap() > 10_000  # what is alive now joins the frozen heap

    class Node:
        pass

    node = Node()
    node.self = node  # a cycle made after the freeze
    alive = weakref.ref(node)
    del node
    gc.collect()
    assert alive() is None
