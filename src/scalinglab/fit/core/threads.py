"""Fits run with one BLAS thread: their matrices are tiny (5-7 parameters), and OpenBLAS's threads, woken
for each, cost more than they give; on a busy machine far more (Approach 3 on 250 runs: 3.3 s with two
threads on 2 busy cores, 0.25 s with one; scipy's L-BFGS-B `setulb` ~1.5 ms a call, issue 29)."""
from __future__ import annotations

import functools

from threadpoolctl import threadpool_limits


def one_blas_thread(fn):
    """Run ``fn`` with BLAS limited to one thread (restored afterwards)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with threadpool_limits(1, user_api="blas"):
            return fn(*args, **kwargs)
    return wrapper
