"""Several processes calibrating together, through accelerate (torch.distributed: gloo on CPU, nccl on GPU).

Calibration statistics are sums over windows, so each process takes a contiguous shard of the calibration
windows, accumulates its own sums, and the sums are added up (`Covariance.all_reduce`) before every
factorization: every process then fits the same factors, and the result equals one process's up to the
order of floating-point summation. What is not a sum over windows runs on the same first windows of the
full set in every process: the allocation spectra in each, the sensitivity probes split by projection
(`share`) and their gains gathered (`merge`), so the ranks come out as in one process. Only the main
process writes the output; the others wait at a barrier.

Launch with `lite-whisper convert --num-processes N` (re-launches itself through accelerate), or yourself:
    accelerate launch --multi_gpu --num_processes N -m lite_whisper.cli convert ...
`--multi_gpu` is accelerate's torchrun path, which also starts N processes on a machine without GPUs
(`--device cpu` then makes them use gloo); accelerate's `--cpu` flag starts several processes only through
MPI (`--mpirun_hostfile`), and otherwise a single one.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import warnings
from datetime import timedelta
from typing import Mapping, Sequence

import torch
from accelerate import PartialState

# Non-main processes wait at the final barrier while the main one builds and saves the model (minutes for
# large-v3 on CPU): a generous timeout instead of torch's 10-30 min default.
TIMEOUT = timedelta(hours=3)

_state = None  # accelerate.PartialState once `setup` ran


def launched_world_size() -> int:
    """Processes the launcher (accelerate, torchrun, MPI) started, read from the environment; 1 if none."""
    for name in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        if os.environ.get(name):
            return int(os.environ[name])
    return 1


def setup(device: str = "cpu") -> str:
    """Join the process group the launcher prepared (no-op in a single process); return this process's device.

    CPU processes use gloo, GPU processes nccl, each on its own GPU (`cuda` -> `cuda:<local rank>`).
    """
    global _state
    if launched_world_size() <= 1:
        return device

    _state = PartialState(cpu=not device.startswith("cuda"), timeout=TIMEOUT)
    return str(_state.device) if device.startswith("cuda") else device  # one GPU per process


def num_processes() -> int:
    return _state.num_processes if _state is not None else 1


def process_index() -> int:
    return _state.process_index if _state is not None else 0


def is_main_process() -> bool:
    return process_index() == 0


def wait_for_everyone() -> None:
    if _state is not None:
        _state.wait_for_everyone()


def shard(windows: torch.Tensor, batch_size: int) -> torch.Tensor:
    """This process's contiguous share of the calibration windows, in whole batches of `batch_size`.

    Split at batch boundaries, every process computes exactly the batches one process would (the same
    float32 products), so that only the float64 sums are added in another order.
    """
    if _state is None:
        return windows
    starts = list(range(0, windows.shape[0], batch_size))
    if len(starts) < _state.num_processes:
        raise ValueError(
            f"{windows.shape[0]} calibration windows make {len(starts)} batches of {batch_size} for "
            f"{_state.num_processes} processes, which need one each: raise --num-samples, lower --batch-size "
            "or --pack-seconds, or use fewer processes"
        )
    largest = min(-(-len(starts) // _state.num_processes) * batch_size, windows.shape[0])
    if is_main_process() and largest > 1.25 * windows.shape[0] / _state.num_processes:
        warnings.warn(f"{windows.shape[0]} calibration windows in batches of {batch_size} split unevenly over "
                      f"{_state.num_processes} processes (the busiest gets {largest}): lower --batch-size so "
                      "that each process gets a similar share", stacklevel=2)
    with _state.split_between_processes(starts) as mine:
        return windows[mine[0] : mine[-1] + batch_size]


def share(items: Mapping) -> dict:
    """This process's share of independent jobs (round-robin over the sorted keys, to balance their cost)."""
    keys = sorted(items)[process_index()::num_processes()]
    return {k: items[k] for k in keys}


def merge(parts: Mapping) -> dict:
    """The union of every process's `parts` dict (the results of its `share`), the same in all processes."""
    merged: dict = {}
    for part in gather(dict(parts)):
        merged.update(part)
    return merged


def gather(value) -> list:
    """`value` from every process, in process order (a one-item list in a single process)."""
    if _state is None:
        return [value]
    out = [None] * _state.num_processes
    torch.distributed.all_gather_object(out, value)
    return out


def average_gradients(params: Sequence[torch.nn.Parameter]) -> None:
    """Make backward average these parameters' gradients over the processes (data-parallel fine-tuning)."""
    if _state is None:
        return

    def hook(p: torch.Tensor) -> None:
        torch.distributed.all_reduce(p.grad)
        p.grad /= _state.num_processes

    for p in params:
        p.register_post_accumulate_grad_hook(hook)


def weighted_mean(values: dict[str, float], weight: float) -> dict[str, float]:
    """Per-key mean of float `values` over the processes, each weighted by `weight` (e.g. its window count)."""
    rows = gather((dict(values), weight))
    total = sum(w for _, w in rows)
    return {k: (sum(v[k] * w for v, w in rows) / total if isinstance(values[k], float) else values[k])
            for k in values}


def process_report(windows: int) -> dict:
    """What conversion.json records of the processes: how many, the windows and peak RSS of each."""
    peak_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    rows = gather((windows, peak_mb))
    return {
        "num_processes": len(rows),
        "calibration_windows_per_process": [w for w, _ in rows],
        "peak_rss_mb_per_process": [m for _, m in rows],
    }


def needs_launch(num_processes: int | None) -> bool:
    """Whether `--num-processes N` asks for processes that no launcher has started yet."""
    if num_processes is None:
        return False
    if num_processes < 1:
        raise ValueError(f"--num-processes {num_processes}: must be >= 1")
    started = launched_world_size()
    if started > 1 and num_processes != started:
        raise ValueError(
            f"--num-processes {num_processes}, but the launcher started {started} processes: leave "
            "--num-processes out under `accelerate launch` (its --num_processes decides)"
        )
    return started == 1 and num_processes > 1


def relaunch(argv: Sequence[str], num_processes: int, device: str = "cpu") -> int:
    """Run `lite-whisper ARGV` in `num_processes` processes through `accelerate launch`; return its exit code.

    A fresh launch (rather than forking this process) is exactly what a user's `accelerate launch` runs,
    and the launcher picks a free port so that concurrent conversions do not collide. CPU processes share
    the cores (OMP_NUM_THREADS = cores / N unless set).
    """
    if num_processes < 2:
        raise ValueError(f"--num-processes {num_processes}: relaunching needs at least 2")
    if device.startswith("cuda") and torch.cuda.device_count() < num_processes:
        raise ValueError(
            f"--num-processes {num_processes} with --device {device}: only {torch.cuda.device_count()} GPUs "
            "visible; use at most that many processes (one per GPU), or --device cpu"
        )
    env = dict(os.environ)
    if not device.startswith("cuda"):
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // num_processes)))
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(num_processes),
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
        "-m", "lite_whisper.cli", *argv,
    ]
    return subprocess.run(cmd, env=env).returncode
