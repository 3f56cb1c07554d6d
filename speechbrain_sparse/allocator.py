"""Keep freed memory in the process instead of handing it back to the kernel.

glibc serves every allocation above its *mmap threshold* with a fresh ``mmap``
and returns it with ``munmap`` on free, and trims the heap whenever its free top
exceeds the *trim threshold*. Training on CPU allocates and frees activations of
varying sizes at every step, so the same memory goes back and forth to the kernel
thousands of times per epoch, each time faulting in every page again: a sixth of
the CPU time of our demo was kernel time spent on minor page faults.

:func:`keep_freed_memory` raises both thresholds with ``mallopt`` (the runtime
equivalent of ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``), so freed
blocks are reused by the next step. It affects the calling process and the
processes it forks afterwards (DataLoader workers). Elsewhere than glibc it does
nothing.

Example
-------
>>> keep_freed_memory() in (True, False)
True
"""

import ctypes
import ctypes.util
import logging
import platform

logger = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc refuses an mmap threshold above HEAP_MAX_SIZE / 2 (32 MiB on 64-bit).
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
TRIM_THRESHOLD = 1024 * 1024 * 1024


def keep_freed_memory(mmap_threshold=MMAP_THRESHOLD_MAX, trim_threshold=TRIM_THRESHOLD):
    """Raises glibc's mmap and trim thresholds for this process.

    Arguments
    ---------
    mmap_threshold : int
        Allocations up to this many bytes come from the heap (reused after free).
    trim_threshold : int
        Free memory at the top of the heap is returned to the kernel only above
        this many bytes.

    Returns
    -------
    bool
        True when both settings were applied (glibc), False otherwise.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        applied = libc.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
        applied = libc.mallopt(M_TRIM_THRESHOLD, int(trim_threshold)) == 1 and applied
    except (OSError, AttributeError):
        return False
    if not applied:
        logger.warning("mallopt refused mmap threshold %d / trim threshold %d",
                       mmap_threshold, trim_threshold)
    return applied
