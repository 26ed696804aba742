"""Data-parallel training: the process group that ``torchrun`` or ``accelerate launch`` sets up.

A script that fits a neural estimator with ``distributed=True`` runs once per process; the
launcher tells each process its rank and the number of processes through the environment
(``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` for ``torchrun`` and ``accelerate launch
--multi_gpu``; the MPI variables for ``accelerate launch`` over ``mpirun`` on CPU hosts).
:func:`init_data_parallel` joins the default :mod:`torch.distributed` process group once
(through :class:`accelerate.PartialState` when accelerate launched the script, otherwise with
:func:`torch.distributed.init_process_group` from the environment): gloo on the CPU, NCCL on
CUDA. Without a launcher it is one process of one, and nothing is initialised.
"""

import atexit
import multiprocessing
import os
import sys
from dataclasses import dataclass

#: Environment variables holding the number of processes, per launcher (torchrun, MPI).
_WORLD_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
#: Variables ``accelerate launch`` sets in every process it starts.
_ACCELERATE_VARS = ("ACCELERATE_USE_CPU", "ACCELERATE_MIXED_PRECISION")


@dataclass(frozen=True)
class DataParallelInfo:
    """Where this process stands in a data-parallel run.

    Attributes
    ----------
    rank : int
        Rank of this process (0 is the main process).
    world_size : int
        Number of processes training together (1 without a launcher).
    local_rank : int
        Rank among the processes of this machine (the GPU index on CUDA).
    backend : str or None
        ``"gloo"`` or ``"nccl"``; ``None`` for a single process.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None


def _env_int(names, default):
    for name in names:
        value = os.environ.get(name)
        if value not in (None, ""):
            return int(value)
    return default


def launched_world_size() -> int:
    """The number of processes a launcher started (1 when the script runs on its own)."""
    return _env_int(_WORLD_SIZE_VARS, 1)


def data_parallel_info() -> DataParallelInfo:
    """This process's rank, the world size, its local rank and the backend, as they are now.

    Returns
    -------
    DataParallelInfo
        One process of one unless a process group is initialised.

    Examples
    --------
    >>> from sklearn_alnm.utils import data_parallel_info
    >>> data_parallel_info().world_size
    1
    """
    if not _torch_distributed_ready():
        return DataParallelInfo()
    import torch.distributed as dist

    local = _env_int(("LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK"), None)
    rank = dist.get_rank()
    return DataParallelInfo(
        rank=rank,
        world_size=dist.get_world_size(),
        local_rank=rank if local is None else local,
        backend=str(dist.get_backend()),
    )


def is_main_process() -> bool:
    """Whether this process should write files (checkpoints, the fitted pickle, reports).

    True without a launcher and on rank 0 of a data-parallel run. Guard the writes of a
    training script with it, so that one process of ``N`` writes them::

        model.fit(X, y)
        if is_main_process():
            joblib.dump(model, "model.joblib")

    Returns
    -------
    bool

    Examples
    --------
    >>> from sklearn_alnm.utils import is_main_process
    >>> is_main_process()
    True
    """
    return data_parallel_info().rank == 0


def init_data_parallel(device: str = "cpu") -> DataParallelInfo:
    """Join the default process group of a launched data-parallel run (once per process).

    Parameters
    ----------
    device : str, default="cpu"
        The training device: ``"cuda"`` selects NCCL and this process's GPU
        (``LOCAL_RANK``); anything else gloo.

    Returns
    -------
    DataParallelInfo
        One process of one when no launcher started this script.

    Raises
    ------
    RuntimeError
        If a launcher asked for several processes and ``torch.distributed`` is not available
        in this build of PyTorch, or if this process is a worker that a launched process
        started (a joblib worker of ``GridSearchCV(n_jobs=2)``): it inherits the launcher's
        variables but is not one of its ranks.
    """
    import torch
    import torch.distributed as dist

    world = launched_world_size()
    on_cuda = str(device).startswith("cuda")
    if dist.is_available() and dist.is_initialized():
        return data_parallel_info()
    if world <= 1:
        return DataParallelInfo()
    if multiprocessing.parent_process() is not None:
        # a joblib / multiprocessing worker of a launched rank inherits its RANK and WORLD_SIZE:
        # joining with them would wait forever for a rank that is already there
        raise RuntimeError(
            f"a data-parallel fit in a worker process (pid {os.getpid()}) of a launched run "
            f"of {world} processes: only the processes the launcher started can train "
            "together. Keep n_jobs=1 for work that fits estimators with distributed=True "
            "(e.g. GridSearchCV); a rank started by Python multiprocessing should call "
            "torch.distributed.init_process_group itself first."
        )
    if not dist.is_available():
        raise RuntimeError(
            f"the launcher started {world} processes, but this PyTorch build has no "
            "torch.distributed."
        )
    local = _env_int(("LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK"), 0)
    if on_cuda:
        torch.cuda.set_device(local)
    if any(name in os.environ for name in _ACCELERATE_VARS) and _has_accelerate():
        from accelerate import PartialState

        PartialState(cpu=not on_cuda)  # reads the launcher's variables, MPI's included
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if on_cuda else "gloo")
    atexit.register(_destroy_process_group)
    return data_parallel_info()


def _has_accelerate():
    try:
        import accelerate  # noqa: F401
    except ImportError:
        return False
    return True


def _torch_distributed_ready():
    """Whether a process group is initialised (without importing torch where no one has)."""
    if "torch" not in sys.modules:
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def _destroy_process_group():
    if _torch_distributed_ready():
        import torch.distributed as dist

        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every process of the run reaches this point (nothing for one process)."""
    if data_parallel_info().world_size > 1:
        import torch.distributed as dist

        dist.barrier()
