"""Measured per-rank memory peak of one training step, by category (PyTorch's memory profiler).

What is measured. :func:`measure_peak` runs a callable (one whole optimiser step: forward,
backward, clipping, ``optimizer.step``, ``zero_grad``) under ``torch.profiler.profile`` with
``profile_memory=True, record_shapes=True, with_stack=True``. Two readings of that profile:

* the replay: the tensor storages alive on the device before the step (a garbage-collector scan,
  :func:`live_storages`), then every allocation and free the profiler recorded, in time order;
  its largest total is the peak. The profiler records only the training thread's allocator calls,
  so a storage freed elsewhere (gloo's worker threads release the buffers of asynchronous
  collectives under FSDP2) or allocated before the step and freed in it has no free event; such
  storages are found after the step (gone, without a free) and give the peak a lower and an upper
  bound (:class:`MeasuredPeak`). A closure check (before + allocated - freed - missed = after)
  shows that every storage is accounted for.
* the profiler's categorised memory timeline (``torch.profiler._memory_profiler``
  ``.MemoryProfileTimeline``, the data behind the public ``profile.export_memory_timeline``):
  each storage put in PARAMETER, OPTIMIZER_STATE, GRADIENT, ACTIVATION, INPUT, TEMPORARY,
  AUTOGRAD_DETAIL or uncategorised, read at its peak. Its data-flow analysis fails on some ranks
  of an FSDP2 step ("version mismatch" on the collectives' buffers); the categories are then
  missing, the replay's peak is not.

Why this and not the allocator or the process RSS: on CPU there is no caching allocator whose
high-water mark could be read (``torch.cuda.max_memory_allocated`` has no CPU counterpart), and the
RSS holds the Python interpreter, the imported libraries and freed-but-unreturned heap, none of
which the memory plan models. The profiler counts exactly the tensor bytes (requested sizes, views
counted once by storage), which is what the plan claims to count. Why not ``saved_tensors_hooks``:
they see what autograd keeps for backward, not the gradients, temporaries, communication buffers
or the optimizer's working tensors, and the plan's total is compared with the whole step's peak.

In: every tensor storage on the device alive during the step: parameters (FSDP shards and
gathered copies), gradients, AdamW moments, activations, the data batch passed to the step (the
profiler's INPUT), FSDP2 all-gather / reduce-scatter buffers, temporaries. Out: allocator rounding
and fragmentation, Python objects, memory gloo or other libraries allocate outside PyTorch's
allocator. Only the trainable network's step is measured: the tiny presets' frozen encoders do not
run in it (their outputs are cached features, docs/motus.md §2.1), as the plan assumes.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch._C._profiler import _EventType
from torch.distributed.tensor import DTensor
from torch.profiler import ProfilerActivity, _utils, profile
from torch.profiler._memory_profiler import _CATEGORY_TO_INDEX, MemoryProfileTimeline

CATEGORY_NAMES: tuple[str, ...] = tuple(
    (c.name.lower() if c is not None else "uncategorised") for c in _CATEGORY_TO_INDEX
)
"""Category names in the timeline's order (``_CATEGORY_TO_INDEX``; ``None`` -> uncategorised)."""


@dataclass(frozen=True)
class MeasuredPeak:
    """Tensor bytes live on one rank's device during one step.

    The profiler records the allocations and frees made on the threads it profiles (the
    training thread). A storage allocated there but freed on another thread (gloo's worker threads
    release the buffers of asynchronous collectives), or allocated before the step and freed in
    it, has no free event; such storages are found afterwards (neither freed in the profile nor
    alive after the step) and bound the peak from both sides: ``peak_bytes`` keeps each of them
    until the latest moment it can have been freed (its address reused, or the step's end),
    ``peak_lower_bytes`` drops them altogether. Without such storages the two are equal.

    Attributes:
        peak_bytes: the largest total over the step [bytes] (upper bound, see above).
        peak_lower_bytes: the lower bound of the peak.
        start_bytes: tensor storages alive on the device when the step starts
            (:func:`live_tensor_bytes`).
        end_live_bytes: the same after the step.
        unseen_free_bytes: bytes of the storages whose free the profiler did not record.
        closure_bytes: ``start + allocations - frees - unseen frees - end_live``: 0 when every
            storage is accounted for (the tests check it).
        at_peak: bytes per category (keys :data:`CATEGORY_NAMES`) at the peak of the profiler's
            categorised timeline, or None where the profiler's data-flow analysis fails (it does,
            on some ranks, on FSDP2 steps with gloo: "version mismatch").
        categorized_peak_bytes: that timeline's peak (it counts the pre-existing tensors the step
            uses and shares the blind spot above), or None.
    """

    peak_bytes: int
    peak_lower_bytes: int
    start_bytes: int
    end_live_bytes: int
    unseen_free_bytes: int
    closure_bytes: int
    at_peak: dict[str, int] | None
    categorized_peak_bytes: int | None

    def describe(self) -> str:
        """One line: the peak and its non-zero categories in MB (1e6 bytes)."""
        line = (
            f"peak {self.peak_lower_bytes / 1e6:.3f}-{self.peak_bytes / 1e6:.3f} MB (start "
            f"{self.start_bytes / 1e6:.3f} MB, unseen frees {self.unseen_free_bytes / 1e6:.3f} MB)"
        )
        if self.at_peak is not None:
            parts = ", ".join(f"{k} {v / 1e6:.3f}" for k, v in self.at_peak.items() if v)
            line += f"; categorised peak {self.categorized_peak_bytes / 1e6:.3f} MB: {parts}"
        return line


def live_storages(device: torch.device | str = "cpu") -> dict[int, int]:
    """Distinct tensor storages on ``device`` that Python objects hold now: address -> bytes.

    Walks ``gc.get_objects()`` after a collection (DTensors through their local tensors; views
    counted once, by storage). Tensors held only from C++ (an autograd graph in flight) are not
    seen: call it between steps.
    """
    device = torch.device(device)
    gc.collect()
    with warnings.catch_warnings():  # isinstance on deprecated module attributes warns
        warnings.simplefilter("ignore")
        objects = [o for o in gc.get_objects() if isinstance(o, torch.Tensor)]
    storages: dict[int, int] = {}
    for obj in objects:
        if isinstance(obj, DTensor):
            continue
        try:
            if obj.device.type != device.type or obj.is_meta:
                continue
            if device.index is not None and obj.device.index != device.index:
                continue
            storage = obj.untyped_storage()
        except (RuntimeError, NotImplementedError):  # wrapper subclasses without storage
            continue
        if storage.data_ptr() and storage.nbytes():
            storages[storage.data_ptr()] = storage.nbytes()
    return storages


def live_tensor_bytes(device: torch.device | str = "cpu") -> int:
    """Sum of :func:`live_storages` [bytes]."""
    return sum(live_storages(device).values())


def peak_of_timeline(times: list[int], sizes: list[list[int]]) -> tuple[int, dict[str, int]]:
    """The peak of a coalesced memory timeline and its categories.

    Args:
        times: event times [µs], one per row of ``sizes`` (unused except for its length).
        sizes: per time, bytes per category: index 0 unused, then ``len(CATEGORY_NAMES)`` columns
            in the order of :data:`CATEGORY_NAMES` (``MemoryProfileTimeline._coalesce_timeline``).

    Returns:
        ``(peak bytes, bytes per category at the peak)``.

    Raises:
        ValueError: empty timeline, or rows of another width than expected.
    """
    width = len(CATEGORY_NAMES) + 1
    if not sizes or len(times) != len(sizes) or any(len(row) != width for row in sizes):
        raise ValueError(
            f"memory timeline: expected equal-length times / sizes with rows of {width} "
            f"columns, got {len(times)} times, {len(sizes)} rows, widths "
            f"{sorted({len(r) for r in sizes})}"
        )
    totals = [sum(row) for row in sizes]
    i = max(range(len(totals)), key=totals.__getitem__)
    return totals[i], dict(zip(CATEGORY_NAMES, sizes[i][1:], strict=True))


def _allocation_events(prof: profile, device: torch.device) -> list[tuple[int, int, int]]:
    """The profiler's allocations (+) and frees (-) on ``device``: (time ns, bytes, address)."""
    out = []
    for e in _utils.traverse_dfs(prof.profiler.kineto_results.experimental_event_tree()):
        if e.typed[0] != _EventType.Allocation:
            continue
        a = e.typed[1]
        if a.device.type != device.type:
            continue
        if device.index is not None and a.device.index != device.index:
            continue
        out.append((e.start_time_ns, int(a.alloc_size), int(a.ptr)))
    out.sort(key=lambda t: t[0])
    return out


def replay(
    start: dict[int, int], events: list[tuple[int, int, int]], end: dict[int, int]
) -> tuple[int, int, int, int]:
    """Bounds of the peak from the storages alive before / after and the events between.

    Args:
        start: address -> bytes alive before the step.
        events: (time, +bytes allocated / -bytes freed, address), in time order.
        end: address -> bytes alive after the step.

    Returns:
        ``(upper peak, lower peak, unseen-free bytes, closure bytes)`` as in :class:`MeasuredPeak`.
    """
    open_allocs: dict[int, tuple[int, int]] = {}  # address -> (bytes, allocation event index)
    unseen: dict[int, tuple[int, int]] = {}  # allocation index -> (bytes, latest free index)
    freed_pre: dict[int, int] = {}  # pre-existing storages freed in the step (no event on CPU)
    seen_pre: set[int] = set()  # pre-existing storages whose free was recorded
    for i, (_, nbytes, ptr) in enumerate(events):
        if nbytes > 0:
            if ptr in open_allocs:  # the address came back: the earlier storage was freed unseen
                size, j = open_allocs[ptr]
                unseen[j] = (size, i)
            elif ptr in start and ptr not in seen_pre:
                freed_pre[ptr] = start[ptr]
            open_allocs[ptr] = (nbytes, i)
        elif ptr in open_allocs:
            del open_allocs[ptr]
        elif ptr in start:
            seen_pre.add(ptr)
    for ptr, (size, j) in open_allocs.items():
        if end.get(ptr) != size:
            unseen[j] = (size, len(events))
    for ptr, size in start.items():
        if ptr not in end and ptr not in seen_pre:
            freed_pre[ptr] = size
    free_at: dict[int, int] = {}
    for size, at in unseen.values():
        free_at[at] = free_at.get(at, 0) + size
    upper = sum(start.values())
    lower = upper - sum(freed_pre.values())
    peak_upper, peak_lower = upper, lower
    for i, (_, nbytes, _) in enumerate(events):
        upper += nbytes - free_at.get(i, 0)
        if not (nbytes > 0 and i in unseen):  # the lower bound never holds an unseen-freed one
            lower += nbytes
        peak_upper, peak_lower = max(peak_upper, upper), max(peak_lower, lower)
    upper -= free_at.get(len(events), 0)
    closure = upper - sum(freed_pre.values()) - sum(end.values())
    missed = sum(size for size, _ in unseen.values()) + sum(freed_pre.values())
    return peak_upper, peak_lower, missed, closure


def measure_peak(step: Callable[[], object], device: torch.device | str = "cpu") -> MeasuredPeak:
    """Run ``step()`` once under the memory profiler and return its peak on ``device``.

    Run it on a step after the first one, so the AdamW moments exist (the first
    ``optimizer.step`` creates them; the plan counts them throughout). Profiling slows the step
    (tiny preset on CPU: ≈ 0.4 s profiled, 2-3 s to build the categorised timeline).

    Args:
        step: one training step; its return value is ignored.
        device: the device whose tensors are counted ("cpu", "cuda:0", ...).

    Returns:
        The :class:`MeasuredPeak`.

    Raises:
        ValueError: the profiler recorded no allocation on ``device`` during the step.
    """
    device = torch.device(device)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
    start = live_storages(device)
    with profile(
        activities=activities, profile_memory=True, record_shapes=True, with_stack=True
    ) as prof:
        step()
        gc.collect()  # tensors the step left in reference cycles: their frees are recorded too
    end = live_storages(device)
    events = _allocation_events(prof, device)
    if not events:
        raise ValueError(f"memory profile: no allocation on {device} was recorded in the step")
    upper, lower, unseen, closure = replay(start, events, end)
    at_peak, categorized = None, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the profiler's notes on its experimental analysis
            timeline = MemoryProfileTimeline(prof._memory_profile())
        times, sizes = timeline._coalesce_timeline(str(device))
        categorized, at_peak = peak_of_timeline(times, sizes)
    except AssertionError:  # the data-flow analysis's own consistency check (see MeasuredPeak)
        pass
    return MeasuredPeak(
        upper, lower, sum(start.values()), sum(end.values()), unseen, closure, at_peak, categorized
    )
