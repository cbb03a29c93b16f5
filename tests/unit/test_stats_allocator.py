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


def _run(script: str, **env: str) -> str:
    import os
    import subprocess

    clean = {k: v for k, v in os.environ.items()
             if k not in ("ARROW_DEFAULT_MEMORY_POOL", "_RJEM_MALLOC_CONF")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=60, env={**clean, **env})
    return out.stdout.strip()


POOL_SCRIPT = ("import pyarrow as pa\nfrom exporter.stats import allocator\n"
               "print(allocator.use_system_arrow_pool(), pa.default_memory_pool().backend_name)")


def test_arrow_allocates_with_the_system_allocator_once_asked() -> None:
    assert _run(POOL_SCRIPT) == "True system"


def test_an_operators_arrow_pool_choice_is_kept() -> None:
    assert _run(POOL_SCRIPT, ARROW_DEFAULT_MEMORY_POOL="jemalloc") == "False jemalloc"


def test_polars_returns_freed_pages_within_a_second_unless_the_operator_tuned_it() -> None:
    script = "import os, exporter\nprint(os.environ['_RJEM_MALLOC_CONF'])"
    assert _run(script) == "dirty_decay_ms:1000,muzzy_decay_ms:0"
    assert _run(script, _RJEM_MALLOC_CONF="narenas:1") == "narenas:1"
