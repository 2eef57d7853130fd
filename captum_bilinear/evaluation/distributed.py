"""Sharding an evaluation over processes with ``torch.distributed``.

Under ``torchrun --nproc-per-node K -m captum_bilinear evaluate ...`` every process reads
its rank from the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``),
joins a process group (NCCL when it runs on a GPU, gloo on the CPU), takes the examples
``index % K == rank`` and writes its own records; rank 0 merges them after a barrier.
Without torchrun there is one process and no process group.
"""

import datetime
import os
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

import torch


@dataclass
class Process:
    """This process's place in the run."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    initialized: bool  #: whether this module started the process group

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence[Any]) -> List[Any]:
        """This rank's share: every ``world_size``-th item from position ``rank``.

        Example:
            >>> Process(1, 3, 1, torch.device("cpu"), False).shard(list("abcdefg"))
            ['b', 'e']
        """
        return [item for position, item in enumerate(items) if position % self.world_size == self.rank]

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.initialized:
            import torch.distributed as dist

            dist.destroy_process_group()


def _device(requested: Optional[str], local_rank: int) -> torch.device:
    if requested is None:
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device: {requested!r} is not a device; expected cpu, cuda, cuda:1, ... "
                         f"({str(error).splitlines()[0] if str(error) else type(error).__name__})") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: {requested!r} asked for, but CUDA is not available")
        if device.index is None:  # each rank on its own GPU
            device = torch.device(f"cuda:{local_rank % torch.cuda.device_count()}")
    return device


def current_process(device: Optional[str] = None, timeout_hours: float = 72.0) -> Process:
    """This process's rank and device, joining the process group torchrun set up.

    Args:
        device: ``"cpu"``, ``"cuda"`` (each rank on ``cuda:LOCAL_RANK``), ``"cuda:1"``...;
            default: the local GPU if there is one, else the CPU.
        timeout_hours: how long a rank waits for the others at the final barrier.

    Example:
        >>> process = current_process("cpu")   # not under torchrun: one process
        >>> process.rank, process.world_size, process.device.type
        (0, 1, 'cpu')
    """
    if device is not None and not isinstance(device, str):
        raise TypeError(f"device: expected a string such as 'cpu' or 'cuda:0', got {type(device).__name__}")
    rank = int(os.environ.get("RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    target = _device(device, local_rank)
    initialized = False
    if world_size > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if target.type == "cuda" else "gloo"
            if target.type == "cuda":
                torch.cuda.set_device(target)
            dist.init_process_group(backend, timeout=datetime.timedelta(hours=timeout_hours))
            initialized = True
        rank, world_size = dist.get_rank(), dist.get_world_size()
        if target.type == "cpu":  # the cores are shared by the ranks of this machine
            local = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))
    return Process(rank, world_size, local_rank, target, initialized)
