"""The skorch net every neural estimator builds: mixed precision, channels-last, device moves.

:class:`AcceleratedNet` is a :class:`skorch.NeuralNet` whose training, validation and
inference steps run under autocast (bfloat16, or float16 with gradient scaling) on CUDA, keep
4-D inputs and the module in the channels-last memory format there, move whatever a batch is
(tensors, dicts, lists, tuples of them) to the device, augment training batches on the device
and pickle without runtime objects. Task-specific nets (classification losses with weights,
segmentation targets, detection loss dicts) subclass it.
"""

import contextlib
import os
from collections.abc import Mapping, Sequence

import torch
from skorch import NeuralNet
from skorch.callbacks import LRScheduler
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator
from torch.utils.data import DataLoader

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
    """

    def __init__(
        self,
        *args,
        amp=None,
        channels_last=False,
        augment=None,
        resume=False,
        inference_transform=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.amp = amp
        self.channels_last = channels_last
        self.augment = augment
        self.resume = resume
        self.inference_transform = inference_transform

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
        return self._move(x, self._on_cuda())

    def _move(self, x, on_cuda):
        if isinstance(x, torch.Tensor):
            if not on_cuda:
                return x.to(self.device)
            x = x.to(self.device, non_blocking=True)
            if self.channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            return x
        if isinstance(x, Mapping):
            return {key: self._move(value, on_cuda) for key, value in x.items()}
        if isinstance(x, tuple) and hasattr(x, "_fields"):  # a named tuple keeps its type
            return type(x)(*(self._move(value, on_cuda) for value in x))
        if isinstance(x, tuple):
            return tuple(self._move(value, on_cuda) for value in x)
        if isinstance(x, Sequence) and not isinstance(x, str | bytes):
            return [self._move(value, on_cuda) for value in x]
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
        if training and "drop_last" not in kwargs and len(dataset) > 1:
            # a last batch of a single image breaks BatchNorm in training mode
            kwargs["drop_last"] = len(dataset) % kwargs["batch_size"] == 1
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
        return super().fit_loop(X, y, epochs=epochs, **fit_params)

    # ------------------------------------------------------------------------------ pickle

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("grad_scaler_", None)
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
