"""The skorch net every neural estimator builds: mixed precision, channels-last, data-parallel.

:class:`AcceleratedNet` is a :class:`skorch.NeuralNet` whose training, validation and
inference steps run under autocast (bfloat16, or float16 with gradient scaling) on CUDA, keep
4-D inputs and the module in the channels-last memory format there, move whatever a batch is
(tensors, dicts, lists, tuples of them) to the device, augment training batches on the device
and pickle without runtime objects. With ``distributed`` it trains data-parallel over the
processes of a ``torchrun`` / ``accelerate launch`` run through
:class:`~torch.nn.parallel.DistributedDataParallel`. Task-specific nets (classification losses
with weights, segmentation targets, detection loss dicts) subclass it.
"""

import contextlib
import os
from collections.abc import Mapping, Sequence

import torch
from skorch import NeuralNet
from skorch.callbacks import BatchScoring, Checkpoint, EpochScoring, LRScheduler
from skorch.dataset import get_len, unpack_data
from skorch.utils import TeeGenerator, to_tensor
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from ..utils._distributed import data_parallel_info, is_main_process

_AMP = {"bf16": torch.bfloat16, "fp16": torch.float16}


class AcceleratedNet(NeuralNet):
    """A skorch ``NeuralNet`` with mixed precision, channels-last and batch augmentation.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`skorch.NeuralNet`.
    amp : {"bf16", "fp16"} or None, default=None
        Autocast dtype of the forward pass and loss on CUDA (``"fp16"`` also scales the
        gradients with a :class:`torch.amp.GradScaler`). Ignored on other devices.
    channels_last : bool, default=False
        On CUDA, keep the module and 4-D inputs in the channels-last memory format.
    augment : callable or None, default=None
        Applied to every training batch ``(N, C, H, W)`` once it is on the device, never to
        validation or prediction batches.
    resume : bool, default=False
        Count ``max_epochs`` from the history (a fit resumed from a checkpoint trains only the
        epochs still missing).
    inference_transform : callable or None, default=None
        Applied to validation and prediction batches once they are on the device (the
        deterministic counterpart of ``augment``, e.g. the middle frame of each video segment).
    distributed : dict or None, default=None
        Train data-parallel: ``None`` trains in this process alone; a dict (possibly empty) of
        :class:`~torch.nn.parallel.DistributedDataParallel` options (``find_unused_parameters``,
        ``bucket_cap_mb``, ...) trains over the processes of the default process group
        (:func:`~sklearn_alnm.utils.init_data_parallel`), one process of one when there is
        none. ``batch_size`` is then the *global* batch: each of ``N`` processes takes
        ``batch_size / N`` samples of one shuffled order (a
        :class:`~torch.utils.data.distributed.DistributedSampler` seeded alike on every
        rank), so the ranks' batches of one step together are the batch a single process
        with the same order would take. DDP averages the gradients; the recorded training
        loss is the mean over the global batch; training scoring callbacks see the targets
        and outputs of all ranks (the inputs of their own); batch-norm buffers are broadcast
        from rank 0 after every epoch, so every rank validates (on the whole validation
        set) and ends with the same module; checkpoints are written by rank 0 only.
    """

    def __init__(
        self,
        *args,
        amp=None,
        channels_last=False,
        augment=None,
        resume=False,
        inference_transform=None,
        distributed=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.amp = amp
        self.channels_last = channels_last
        self.augment = augment
        self.resume = resume
        self.inference_transform = inference_transform
        self.distributed = distributed

    # ------------------------------------------------------------------------- device bits

    def _on_cuda(self):
        return str(self.device).startswith("cuda")

    def _autocast(self):
        if self.amp is None or not self._on_cuda():
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=_AMP[self.amp])

    def _to_device(self, x):
        """``x`` on the device: a tensor, or dicts, lists, tuples (and other sequences, such
        as a batch of images of different sizes) of them, recursively; anything else as is.

        On CUDA the copy is non-blocking (batches come from pinned memory) and 4-D tensors
        take the channels-last memory format when ``channels_last``.
        """
        if self.device is None:
            return x
        on_cuda = self._on_cuda()
        return _map_tensors(lambda t: self._move_tensor(t, on_cuda), x)

    def _move_tensor(self, x, on_cuda):
        if not on_cuda:
            return x.to(self.device)
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def initialize_module(self):
        super().initialize_module()
        if self.channels_last and self._on_cuda():
            self.module_.to(memory_format=torch.channels_last)
        return self

    def initialize(self):
        super().initialize()
        use_scaler = self.amp == "fp16" and self._on_cuda()
        self.grad_scaler_ = torch.amp.GradScaler("cuda") if use_scaler else None
        return self

    # --------------------------------------------------------------------------- the steps

    def get_iterator(self, dataset, training=False):
        kwargs = self.get_params_for("iterator_train" if training else "iterator_valid")
        iterator = self.iterator_train if training else self.iterator_valid
        kwargs.setdefault("batch_size", self.batch_size)
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = len(dataset)
        n_samples = len(dataset)
        parallel = getattr(self, "_data_parallel", None)
        if training and parallel is not None:
            kwargs = parallel.iterator_kwargs(dataset, kwargs)
            n_samples = len(kwargs["sampler"])
        if training and "drop_last" not in kwargs and n_samples > 1:
            # a last batch of a single image breaks BatchNorm in training mode
            kwargs["drop_last"] = n_samples % kwargs["batch_size"] == 1
        if self._on_cuda() and iterator is DataLoader:
            # decided here, not at fit time, so a net unpickled on a CPU machine runs lean;
            # workers only pay off when batches are read from files (a preloaded batch is one
            # index_select, cheaper than shipping it from a worker process)
            kwargs.setdefault("pin_memory", True)
            if _reads_on_access(dataset):
                kwargs.setdefault("num_workers", min(2, os.cpu_count() or 1))
                if training:
                    kwargs.setdefault("persistent_workers", True)
        if not kwargs.get("num_workers"):
            kwargs.pop("persistent_workers", None)
        return iterator(dataset, **kwargs)

    def _training_module(self):
        """The module the training forward runs through: the DDP wrapper during a
        data-parallel fit (its forward arms the gradient all-reduce), else ``module_``."""
        parallel = getattr(self, "_data_parallel", None)
        if parallel is None or parallel.ddp is None or not torch.is_grad_enabled():
            return self.module_
        return parallel.ddp

    def infer(self, x, **fit_params):
        module = self._training_module()
        if module is self.module_:
            return super().infer(x, **fit_params)
        x = to_tensor(x, device=self.device)
        if isinstance(x, Mapping):
            return module(**self._merge_x_and_fit_params(x, fit_params))
        return module(x, **fit_params)

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = self._training_batch(*unpack_data(batch))
        with self._autocast():
            y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self._backward(loss)
        return {"loss": loss.detach(), "y_pred": self._detach(y_pred)}

    def _training_batch(self, Xi, yi):
        """The training batch as the network sees it: inputs on the device, augmented."""
        Xi = self._to_device(Xi)
        if self.augment is not None:
            Xi = self.augment(Xi)
        return Xi, yi

    def _backward(self, loss):
        """Back-propagate ``loss``, scaled when fp16 autocast uses a gradient scaler."""
        scaler = getattr(self, "grad_scaler_", None)
        if scaler is not None:
            scaler.scale(loss).backward()
        else:
            loss.backward()

    @staticmethod
    def _detach(y_pred):
        return y_pred.detach()

    def train_step(self, batch, **fit_params):
        scaler = getattr(self, "grad_scaler_", None)
        if scaler is None:
            return super().train_step(batch, **fit_params)
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        optimizers = [getattr(self, name + "_") for name in self._optimizers]
        for optimizer in optimizers:
            scaler.unscale_(optimizer)
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        for optimizer in optimizers:
            scaler.step(optimizer)
        scaler.update()
        return step

    def _inference_batch(self, Xi):
        """A validation or prediction batch as the network sees it: on the device, with the
        ``inference_transform``."""
        Xi = self._to_device(Xi)
        if self.inference_transform is not None:
            Xi = self.inference_transform(Xi)
        return Xi

    def validation_step(self, batch, **fit_params):
        self._set_training(False)
        Xi, yi = unpack_data(batch)
        Xi = self._inference_batch(Xi)
        with torch.inference_mode(), self._autocast():
            y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=False)
        return {"loss": loss, "y_pred": y_pred}

    def evaluation_step(self, batch, training=False):
        self.check_is_fitted()
        Xi, _ = unpack_data(batch)
        Xi = self._inference_batch(Xi)
        self._set_training(training)
        grad = torch.enable_grad() if training else torch.inference_mode()
        with grad, self._autocast():
            y_pred = self.infer(Xi)
        if isinstance(y_pred, torch.Tensor) and y_pred.is_floating_point():
            y_pred = y_pred.float()
        return y_pred

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        if epochs is None and self.resume:
            epochs = max(self.max_epochs - len(self.history), 0)
        if self.distributed is None:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        self._data_parallel = _DataParallel(self)
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        finally:
            self._data_parallel = None

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        parallel = getattr(self, "_data_parallel", None)
        if not training or iterator is None or parallel is None:
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        iterator.sampler.set_epoch(len(self.history) - 1)
        if parallel.world_size == 1:
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        parallel.wrap()  # again when a freezing schedule changed the trainable parameters
        gather = parallel.gathers_outputs()
        batch_count = 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            n_local = get_len(batch[0]) if isinstance(batch, tuple | list) else get_len(batch)
            loss, n_global = parallel.mean_loss(step["loss"], n_local)
            self.history.record_batch(prefix + "_loss", loss)
            self.history.record_batch(prefix + "_batch_size", n_global)
            if gather:
                X_local, y_local = unpack_data(batch)
                y_all, y_pred_all = parallel.gather((y_local, step["y_pred"]))
                batch, step = (X_local, y_all), {**step, "y_pred": y_pred_all}
            self.notify("on_batch_end", batch=batch, training=training, **step)
            batch_count += 1
        self.history.record(prefix + "_batch_count", batch_count)
        parallel.broadcast_buffers()

    # ------------------------------------------------------------------------------ pickle

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("grad_scaler_", None)
        state.pop("_data_parallel", None)
        # callbacks hold runtime objects (the scheduler references the optimizer, scorers cache
        # outputs): pickle copies without them, or they would bypass skorch's device mapping
        if state.get("callbacks_"):
            state["callbacks_"] = [
                (name, _picklable_callback(cb)) for name, cb in state["callbacks_"]
            ]
        if isinstance(state.get("callbacks"), list):
            state["callbacks"] = [
                (item[0], _picklable_callback(item[1]))
                if isinstance(item, tuple | list)
                else _picklable_callback(item)
                for item in state["callbacks"]
            ]
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self.grad_scaler_ = None


class _DataParallel:
    """The data-parallel side of one ``fit_loop``: rank, sampler seed, DDP wrapper, collectives.

    Made at the start of the loop, on every rank in the same order of operations: the
    sampler's seed is drawn from torch's generator and broadcast from rank 0 (ranks seeded
    differently still shuffle alike), then each rank's generator is reseeded with its rank
    so that augmentation and dropout differ between ranks.
    """

    def __init__(self, net):
        self.net = net
        info = data_parallel_info()
        self.rank, self.world_size = info.rank, info.world_size
        self.options = dict(net.distributed)
        self.ddp = None
        self._wrapped_flags = None
        seed = torch.randint(0, 2**31 - 1, (1,), dtype=torch.int64)
        if self.world_size > 1:
            seed = seed.to(self._collective_device())
            torch.distributed.broadcast(seed, src=0)
        self.seed = int(seed.item())
        torch.manual_seed(self.seed + 1 + self.rank)

    def _collective_device(self):
        backend = torch.distributed.get_backend()
        return torch.device(self.net.device) if backend == "nccl" else torch.device("cpu")

    # ----------------------------------------------------------------------- the iterator

    def iterator_kwargs(self, dataset, kwargs):
        """DataLoader arguments of this rank: its share of the global batch, its sampler."""
        kwargs = dict(kwargs)
        if kwargs.get("sampler") is not None or kwargs.get("batch_sampler") is not None:
            raise ValueError(
                "distributed training draws the batches with a DistributedSampler; "
                "iterator_train__sampler / iterator_train__batch_sampler cannot be given."
            )
        batch_size, world = kwargs["batch_size"], self.world_size
        sampler = DistributedSampler(
            dataset,
            num_replicas=world,
            rank=self.rank,
            shuffle=bool(kwargs.pop("shuffle", True)),
            seed=self.seed,
        )
        if batch_size >= len(dataset):
            local = len(sampler)  # one batch of everything
        elif batch_size % world:
            raise ValueError(
                f"batch_size={batch_size} is the global batch of the {world} processes "
                f"and must be a multiple of {world}."
            )
        else:
            local = batch_size // world
        kwargs.update(sampler=sampler, batch_size=local)
        return kwargs

    # ------------------------------------------------------------------------ the wrapper

    def wrap(self):
        """Wrap ``module_`` in DDP, again whenever its set of trainable parameters changed
        (DDP reduces the gradients of the parameters that required them when it was made)."""
        module = self.net.module_
        flags = tuple(p.requires_grad for p in module.parameters())
        if self.ddp is not None and flags == self._wrapped_flags:
            return
        own = {id(p) for p in module.parameters()}
        outside = [n for n, p in self.net.get_all_learnable_params() if id(p) not in own]
        if outside:
            raise ValueError(
                "distributed training averages the gradients of the module only; these "
                f"learnable parameters live elsewhere (e.g. in the criterion): {outside[:5]}."
            )
        from torch.nn.parallel import DistributedDataParallel

        device = torch.device(self.net.device)
        device_ids = [device] if device.type == "cuda" else None
        self.ddp = DistributedDataParallel(module, device_ids=device_ids, **self.options)
        self._wrapped_flags = flags

    # ------------------------------------------------------------------------ collectives

    def mean_loss(self, loss, n_local):
        """``(mean loss over the global batch, global batch size)``, the same on every rank."""
        device = self._collective_device()
        n = torch.tensor(float(n_local), device=device)
        totals = torch.stack([loss.detach().float().to(device) * n, n])
        torch.distributed.all_reduce(totals)
        return (totals[0] / totals[1]).item(), int(totals[1].item())

    def gather(self, obj):
        """Every rank's ``obj`` (tensors and nests of them) concatenated along the batch."""
        parts = [None] * self.world_size
        torch.distributed.all_gather_object(parts, _map_tensors(lambda t: t.detach().cpu(), obj))
        return _concat(parts)

    def gathers_outputs(self):
        """Whether a callback scores the training batches (then it needs every rank's)."""
        return any(
            isinstance(cb, EpochScoring | BatchScoring) and cb.on_train
            for _, cb in self.net.callbacks_
        )

    def broadcast_buffers(self):
        """Rank 0's buffers (batch-norm statistics) on every rank."""
        device = self._collective_device()
        for buffer in self.net.module_.buffers():
            data = buffer.data.to(device)
            torch.distributed.broadcast(data, src=0)
            if data is not buffer.data:
                buffer.data.copy_(data)


def _map_tensors(fn, x):
    """``fn`` applied to every tensor of ``x``: a tensor, or dicts, named tuples, tuples and
    other sequences (e.g. a batch of images of different sizes, as a list) of them,
    recursively; anything else as is."""
    if isinstance(x, torch.Tensor):
        return fn(x)
    if isinstance(x, Mapping):
        return {key: _map_tensors(fn, value) for key, value in x.items()}
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # a named tuple keeps its type
        return type(x)(*(_map_tensors(fn, value) for value in x))
    if isinstance(x, tuple):
        return tuple(_map_tensors(fn, value) for value in x)
    if isinstance(x, Sequence) and not isinstance(x, str | bytes):
        return [_map_tensors(fn, value) for value in x]
    return x


def _concat(parts):
    """Concatenate the ranks' batches: tensors along dim 0 (0-d ones stacked), nests
    element by element, anything else as a list."""
    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(parts) if first.ndim else torch.stack(parts)
    if isinstance(first, Mapping):
        return {key: _concat([part[key] for part in parts]) for key in first}
    if isinstance(first, tuple) and hasattr(first, "_fields"):
        return type(first)(*(_concat(list(items)) for items in zip(*parts)))
    if isinstance(first, tuple):
        return tuple(_concat(list(items)) for items in zip(*parts))
    if isinstance(first, list):
        return [item for part in parts for item in part]
    if first is None:
        return None
    return list(parts)


class MainProcessCheckpoint(Checkpoint):
    """skorch's :class:`~skorch.callbacks.Checkpoint`, written by the main process only
    (rank 0 of a data-parallel run; every rank holds the same state)."""

    def save_model(self, net):
        if is_main_process():
            super().save_model(net)


def _reads_on_access(dataset):
    while isinstance(dataset, torch.utils.data.Subset):
        dataset = dataset.dataset
    return bool(getattr(dataset, "reads_on_access", False))


def _picklable_callback(callback):
    if isinstance(callback, LRScheduler) and getattr(callback, "lr_scheduler_", None) is not None:
        callback = _shallow_copy(callback)
        callback.lr_scheduler_ = None
    if getattr(callback, "y_preds_", None):
        callback = _shallow_copy(callback)
        callback.y_preds_, callback.y_trues_ = [], []
    return callback


def _shallow_copy(obj):
    new = obj.__class__.__new__(obj.__class__)
    new.__dict__.update(obj.__dict__)
    return new
