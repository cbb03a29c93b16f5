"""Tests for exporter.stats.allocator: the heap pad is set once and never fails loudly."""

from __future__ import annotations

import sys

import pytest

from exporter.stats import allocator


def test_setting_the_pad_is_idempotent() -> None:
    first = allocator.keep_heap_pad()
    assert allocator.keep_heap_pad() == first


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_on_linux_with_glibc_the_pad_is_set() -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert allocator.keep_heap_pad() is True


def test_elsewhere_it_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(allocator._state, "done", False)
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator.keep_heap_pad() is False
