"""Timing and peak-memory helpers shared by the benchmark scripts.

Peak memory:
- CUDA: ``torch.cuda.max_memory_allocated()`` minus the allocated bytes at entry (peak stats reset first).
- CPU: ``tracemalloc`` does not see torch's CPU allocations, so the call runs once under
  ``torch.profiler.profile(profile_memory=True)``; the profiler records every allocation and free of torch's CPU
  allocator (all threads) with a timestamp, and the peak of their running sum is the most bytes the call held
  above what existed at entry, its own output included. This is exact for tensor storage; buffers that a BLAS
  library allocates privately (GEMM packing) are not tensors and are not counted, for either variant.
"""
import contextlib
import ctypes
import ctypes.util
import os
import statistics
import time
from typing import Callable

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's start/stop chatter

import torch  # noqa: E402


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory in the process (no mmap for large blocks, no trimming).

    Without this, every large tensor is a fresh mmap that the kernel fills page by page on first touch: on a
    shared machine those page faults cost 5–40 ms per model step with a ±50 % spread from run to run, which
    drowns a 1 % difference. With it, repeated calls reuse the same pages and the timings measure compute. The
    CPU memory column is unaffected (it counts torch's allocations, not the process's pages). Returns False
    where this is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 2 ** 31 - 1))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, clock: str = "wall") -> tuple[float, object]:
    """Seconds of one call and its result: wall-clock (``clock="wall"``, always on CUDA) or this process's CPU
    time (``"process"``: with one torch thread, the compute time of the call, unaffected by other processes
    taking the CPU; with more threads it would also count their spin-waits)."""
    now = time.process_time if clock == "process" and device.type == "cpu" else time.perf_counter
    synchronize(device)
    start = now()
    out = fn()
    synchronize(device)
    return now() - start, out


def time_once(fn: Callable[[], object], device: torch.device, clock: str = "wall") -> float:
    """Seconds of one call (see :func:`timed`), its result dropped."""
    return timed(fn, device, clock)[0]


def summarize(samples: list[float], stat: str = "median") -> float:
    return min(samples) if stat == "min" else statistics.median(samples)


def interleaved(variants: dict[str, Callable[[], object]], device: torch.device, repeats: int,
                budget_s: float = float("inf"), clock: str = "wall") -> dict[str, list[float]]:
    """Time the variants round-robin (order rotated every round) so that they see the same machine state.

    Each variant gets ``repeats`` samples, except that a variant stops after at least one sample once its own
    samples add up to ``budget_s`` (for very slow rows)."""
    samples = {name: [] for name in variants}
    names = list(variants)
    for round_index in range(repeats):
        order = names[round_index % len(names):] + names[:round_index % len(names)]
        for name in order:
            if samples[name] and sum(samples[name]) >= budget_s:
                continue
            samples[name].append(time_once(variants[name], device, clock))
    return samples


@contextlib.contextmanager
def _quiet_stderr():
    """Silence fd 2 (the profiler backend prints to it directly)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def peak_bytes(fn: Callable[[], object], device: torch.device) -> int:
    """Most bytes allocated by ``fn`` at any moment above the allocation at entry (output included)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        out = fn()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - base
        del out
        return peak
    from torch.profiler import ProfilerActivity, profile
    with _quiet_stderr():
        # one cycle per profiler: acc_events only silences its "clears events" warning (torch 2.11)
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True, acc_events=True) as prof:
            out = fn()
            del out
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU)
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak
