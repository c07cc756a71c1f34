"""One run over several processes: torch.distributed data parallelism, started by torchrun (or by
`scalinglab train --nproc K`, which goes through torchrun's own launcher, or by Ray Train).

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; train() then wraps the model in DistributedDataParallel
(gloo on CPU, NCCL on CUDA). Every rank trains on its contiguous slice of each global batch (the batch of
step s depends only on (seed, s)), so the data order, and up to the order of float sums the numbers, are
those of one process with the same global batch. Rank 0 alone writes config.json, checkpoints, snapshots
and result.json. A checkpoint holds the unwrapped model and the optimiser state, the same on every rank, so
a run resumes at any world size.

``fsdp``: the model is sharded instead of replicated (FSDP2, ``fully_shard`` per block and then the whole
model: each rank keeps 1/world of the weights, gradients and Adam moments, and gathers a block's weights
only while it runs it), for a model whose training state does not fit one device. The gradients are
averaged the same way (a reduce-scatter instead of an all-reduce), so the numbers are those of DDP. Its
checkpoint is gathered into full tensors before rank 0 writes it: the same file as a replicated run's,
so a run moves between one process, DDP and FSDP at any world size.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from ..errors import ScalingLabError

LAUNCHED = "SCALINGLAB_LAUNCHED"  # set by `train --nproc`: the launcher holds the run directory's lock


@dataclass(frozen=True)
class Group:
    """This process's place in a data-parallel run."""

    rank: int
    world: int
    local_rank: int
    device: str

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over the ranks (one collective for a handful of scalars)."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def batch_share(self, batch: int) -> np.ndarray:
        """Which of a global batch's ``batch`` sequences this rank trains on (batch divisible by the world
        size): a contiguous share of the first ``world * (b // 2)`` and one of the rest, b = batch / world.
        The ranks' first halves then make up the global batch's first part, as in one process, where the
        gradient noise scale is measured on the first half of the batch against the whole (train/loop.py)."""
        b = batch // self.world
        h = b // 2
        first = np.arange(self.rank * h, (self.rank + 1) * h)
        rest = self.world * h + np.arange(self.rank * (b - h), (self.rank + 1) * (b - h))
        return np.concatenate([first, rest])


def wrap(model: torch.nn.Module, group: Group | None, fsdp: bool) -> torch.nn.Module:
    """The module a rank calls forward on: the model itself alone, sharded in place by ``fully_shard``
    (then called directly), or wrapped in DistributedDataParallel."""
    if group is None:
        return model
    if fsdp:
        from torch.distributed.fsdp import fully_shard
        for block in model.blocks:  # one all-gather per block: only one block's full weights at a time
            fully_shard(block)
        fully_shard(model)
        return model
    ids = [group.local_rank] if group.device.startswith("cuda") else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def local(t: torch.Tensor) -> torch.Tensor:
    """This rank's part of a sharded tensor (DTensor); a plain tensor as it is."""
    from torch.distributed.tensor import DTensor
    return t.to_local() if isinstance(t, DTensor) else t


def gathered(state):
    """A state dict (nested dicts and lists) with every sharded tensor gathered into a full CPU tensor. A
    collective when anything is sharded: every rank calls it, in the same order."""
    from torch.distributed.tensor import DTensor
    if isinstance(state, dict):
        return {k: gathered(v) for k, v in state.items()}
    if isinstance(state, list):
        return [gathered(v) for v in state]
    if isinstance(state, DTensor):
        return state.full_tensor().cpu()
    return state


def sharded_like(optim_state: dict, opt: torch.optim.Optimizer) -> dict:
    """A full optimiser state dict (a checkpoint's) with each parameter's state tensors cut to this rank's
    shard of that parameter, for ``opt.load_state_dict``; no communication (every rank read the file)."""
    from torch.distributed.tensor import DTensor, distribute_tensor
    params = [p for g in opt.param_groups for p in g["params"]]
    state = {}
    for idx, per_param in optim_state["state"].items():
        p = params[int(idx)]
        state[idx] = {k: distribute_tensor(v.to(p.device), p.device_mesh, p.placements, src_data_rank=None)
                      if isinstance(p, DTensor) and torch.is_tensor(v) and v.shape == p.shape else v
                      for k, v in per_param.items()}
    return {**optim_state, "state": state}


def in_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join(device: str) -> tuple[Group | None, str]:
    """The process group of a torchrun world (None alone) and the device this rank trains on."""
    if not in_torchrun():
        return None, device
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ScalingLabError(f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} "
                                  "visible): start at most one process per GPU")
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return Group(rank=rank, world=world, local_rank=local_rank, device=device), device


def leave(group: Group | None) -> None:
    """Leave together: a rank that tore its group down while another still used it died in teardown
    (std::terminate, SIGABRT) about one run in four that started on an empty cache."""
    if group is None or not dist.is_initialized():
        return
    try:
        dist.barrier()
    except Exception:  # a peer is gone (the run is failing anyway): just let go
        pass
    dist.destroy_process_group()


def launch_here(nproc: int, entrypoint, *args):
    """Run ``entrypoint(*args)`` (a callable, or an executable with its arguments) in ``nproc`` processes
    on this machine through torchrun's own launcher (elastic_launch: c10d rendezvous on a free local port,
    no restarts, its logging quiet); returns {local rank: return value}. Raises torch's ChildFailedError
    when a process ends badly and SignalException when the launcher itself is signalled (it passes the
    signal on to every rank first)."""
    import logging
    import signal
    import uuid

    from torch.distributed.launcher.api import LaunchConfig, elastic_launch
    logging.getLogger("torch.distributed.elastic").setLevel(logging.ERROR)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=uuid.uuid4().hex,
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
                          monitor_interval=0.5, start_method="spawn")
    # the launcher installs its own SIGINT/SIGTERM/SIGHUP/SIGQUIT handlers (raising SignalException) and
    # leaves them: give the caller's back, so a later Ctrl-C is a KeyboardInterrupt again
    names = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
    saved = {sig: signal.getsignal(sig) for sig in (getattr(signal, n) for n in names if hasattr(signal, n))}
    try:
        return elastic_launch(config, entrypoint)(*args)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def how_they_ended(failures: dict) -> str:
    """ChildFailedError.failures as one phrase: "rank 1: killed by SIGKILL; rank 0: exit status 1"."""
    import signal

    def how(code: int) -> str:
        return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
    return "; ".join(f"rank {rank}: {how(f.exitcode)}" for rank, f in sorted(failures.items()))
