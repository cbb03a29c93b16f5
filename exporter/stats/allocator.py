"""Keep the C heap's freed memory for the next recomputation (glibc only; a no-op elsewhere).

A recomputation allocates and frees dozens of temporary arrays of a few MB per column. With
glibc's defaults the heap top is trimmed back to the kernel after each free, so the next array
of that size is faulted in page by page again; on a virtual machine those page faults cost
more than the arithmetic (measured: 17 ms instead of 4.5 ms for one 100k-row KS + Wasserstein
pass). ``M_TOP_PAD`` keeps a fixed pad (``PAD_BYTES``; 16 MB already suffices for 100k-row
columns) at the top of the heap when trimming and growing, so the temporaries reuse memory
that is already mapped. Resident memory grows by at most the pad.
"""

from __future__ import annotations

import ctypes
import os
import sys

PAD_BYTES = 16 * 1024 * 1024
_M_TOP_PAD = -2
_M_ARENA_MAX = -8
ARENAS = 2
_state = {"done": False}


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas (call before starting threads); True when it was set.

    Each thread that allocates gets an arena of its own by default, and each keeps its freed
    memory (and the heap pad): with the ingest, compute, statistics, parse and HTTP threads the
    benchmark's steady state peaked at 521 MiB, against 408 MiB with one arena."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))


def keep_heap_pad(pad: int = PAD_BYTES) -> bool:
    """Set glibc's M_TOP_PAD once per process; True when it was set."""
    if _state["done"]:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _state["done"] = bool(mallopt(_M_TOP_PAD, pad))
    return _state["done"]


def use_system_arrow_pool() -> bool:
    """Make glibc Arrow's allocator (unless ``ARROW_DEFAULT_MEMORY_POOL`` chooses one); True if set.

    pyarrow's default mimalloc pool keeps what it freed: reading the benchmark's 100,000-row
    reference (23 MiB of Arrow data) raised peak RSS by 72 MiB with it and by 45 MiB with the
    system allocator, whose arenas ``limit_arenas`` caps and ``release_free_memory`` trims."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return False
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())
    return True


def release_free_memory() -> None:
    """Hand memory freed after a large one-off job (profiling the references) back to the OS.

    Reading a reference through pandas and Arrow leaves tens of MB free but mapped: in Arrow's
    memory pool (mimalloc or jemalloc) and in glibc's heap. Measured on the benchmark's
    100,000-row, 26-column reference: RSS 393 MiB after profiling, 290 MiB after this."""
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except (ImportError, AttributeError):  # pragma: no cover - pyarrow is a dependency
        pass
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None)
            libc.malloc_trim.argtypes = [ctypes.c_size_t]
            libc.malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass
