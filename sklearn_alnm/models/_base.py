"""The shared base of the skorch-backed estimators.

Every neural estimator of the library (image classifier, and later the segmentation, video,
multiple-instance and fusion models) is a scikit-learn estimator that *builds* a skorch net in
``fit`` (composition, not inheritance from skorch): the estimator's parameters are the study's
vocabulary (``backbone``, ``lr_schedule="step"``, ``class_weight="balanced"``), while any
skorch parameter can still be given in skorch's own prefixed form (``optimizer__weight_decay``,
``iterator_train__num_workers``, ``callbacks=[...]``, ``callbacks__lr_scheduler__step_size``)
and round-trips through ``get_params`` / ``set_params`` / ``clone``.

:class:`BaseNeuralEstimator` handles what every such estimator needs: parameter routing,
device resolution and AMP / channels-last on CUDA, seeding (torch's global generators are
forked, so a fit does not disturb the caller's random state), label encoding, the training
callbacks (AUC, learning-rate schedule, early stopping, checkpoint / resume, progress bar),
history and pickling that loads on a CPU-only machine. :class:`AcceleratedNet` is the skorch
net it builds: training, validation and inference steps with autocast, gradient scaling,
channels-last inputs and on-device augmentation of training batches.
"""

import contextlib
import json
import numbers
import os
import warnings
from pathlib import Path

import joblib
import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d
from skorch import NeuralNet
from skorch.callbacks import Checkpoint, EarlyStopping, LoadInitState, LRScheduler, ProgressBar
from skorch.dataset import ValidSplit, unpack_data
from skorch.utils import TeeGenerator, noop
from torch.utils.data import DataLoader

from .._logging import get_logger
from ..utils import check_cohort, resolve_device
from ._data import collate_batches

_log = get_logger(__name__)

#: Prefixes of skorch's routed parameters (``<prefix>__<name>``).
SKORCH_PREFIXES = (
    "module",
    "optimizer",
    "criterion",
    "iterator_train",
    "iterator_valid",
    "callbacks",
    "compile",
)
#: skorch parameters that may be given as they are.
SKORCH_PLAIN = frozenset(
    {
        "criterion",
        "callbacks",
        "iterator_train",
        "iterator_valid",
        "compile",
        "use_caching",
        "torch_load_kwargs",
    }
)
_OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD"}
_AMP = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: Names of the callbacks the estimators add (tunable through ``callbacks__<name>__<param>``).
CALLBACK_NAMES = ("train_auc", "valid_auc", "early_stopping", "load_state", "checkpoint")
CALLBACK_NAMES += ("lr_scheduler", "progress_bar")


def is_skorch_key(key):
    """Whether a keyword belongs to skorch (``module__x``, ``callbacks``, ...)."""
    if key in SKORCH_PLAIN:
        return True
    prefix, sep, rest = key.partition("__")
    return bool(sep and rest) and prefix in SKORCH_PREFIXES


def seed_from(random_state):
    """An int seed from ``random_state`` (an int is used as is)."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def resolve_amp(amp, device):
    """``"bf16"``, ``"fp16"`` or ``None`` (off) for ``amp`` on ``device``."""
    if amp is False or amp is None:
        return None
    if not str(device).startswith("cuda"):
        if amp not in ("auto", True):
            warnings.warn(
                f"amp={amp!r} needs a CUDA device; training on {device!r} in float32.",
                UserWarning,
                stacklevel=3,
            )
        return None
    if amp in ("auto", True):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return amp


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
    """

    def __init__(self, *args, amp=None, channels_last=False, augment=None, resume=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.amp = amp
        self.channels_last = channels_last
        self.augment = augment
        self.resume = resume

    # ------------------------------------------------------------------------- device bits

    def _on_cuda(self):
        return str(self.device).startswith("cuda")

    def _autocast(self):
        if self.amp is None or not self._on_cuda():
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=_AMP[self.amp])

    def _to_device(self, x):
        if not isinstance(x, torch.Tensor) or self.device is None:
            return x
        if not self._on_cuda():
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

    def validation_step(self, batch, **fit_params):
        self._set_training(False)
        Xi, yi = unpack_data(batch)
        Xi = self._to_device(Xi)
        with torch.inference_mode(), self._autocast():
            y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=False)
        return {"loss": loss, "y_pred": y_pred}

    def evaluation_step(self, batch, training=False):
        self.check_is_fitted()
        Xi, _ = unpack_data(batch)
        Xi = self._to_device(Xi)
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


@contextlib.contextmanager
def training_context(seed, device):
    """Seed torch's generators inside a fork of their state; cuDNN autotuning on CUDA."""
    on_cuda = str(device).startswith("cuda")
    devices = [torch.device(device).index or 0] if on_cuda else []
    benchmark = torch.backends.cudnn.benchmark
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        if on_cuda:
            torch.backends.cudnn.benchmark = True
        try:
            yield
        finally:
            torch.backends.cudnn.benchmark = benchmark


class BaseNeuralEstimator(BaseEstimator):
    """Base class of the skorch-backed estimators (not used directly).

    Subclasses define ``__init__`` with their parameters plus ``**skorch_kwargs`` (passed to
    :meth:`_store_skorch_kwargs`), and implement ``fit`` with the helpers below:
    :meth:`_check_training_params`, :meth:`_fit_net` and :meth:`_forward`. Parameters shared by
    every neural estimator, with the same meaning everywhere: ``optimizer``, ``lr``,
    ``lr_schedule``, ``max_epochs``, ``batch_size``, ``early_stopping``, ``valid_split``,
    ``checkpoint_dir``, ``device``, ``amp``, ``random_state``, ``verbose``.

    Attributes set by :meth:`_fit_net`: ``net_`` (the skorch net), ``device_``,
    ``checkpoint_path_``; properties ``module_`` and ``history_``.
    """

    #: The skorch net class built by ``fit``.
    _net_class = AcceleratedNet

    #: ``skorch key -> estimator parameter to use instead`` (keys the estimator sets itself).
    _owned_skorch_keys = {
        "optimizer__lr": "lr",
        "iterator_train__dataset": None,
        "iterator_valid__dataset": None,
    }

    # ------------------------------------------------------------------------ parameters

    def _store_parameters(self, arguments):
        """Store every ``__init__`` argument unchanged (``arguments`` is ``locals()`` of
        ``__init__``), as scikit-learn requires, then the skorch keyword arguments."""
        import inspect

        for name, parameter in inspect.signature(type(self).__init__).parameters.items():
            if name != "self" and parameter.kind is not parameter.VAR_KEYWORD:
                setattr(self, name, arguments[name])
        self._store_skorch_kwargs(arguments.get("skorch_kwargs", {}))

    def _store_skorch_kwargs(self, skorch_kwargs):
        for key, value in skorch_kwargs.items():
            if not is_skorch_key(key):
                raise TypeError(
                    f"{type(self).__name__}.__init__() got an unexpected keyword argument "
                    f"{key!r}; besides its own parameters it accepts skorch's prefixed ones "
                    f"({', '.join(p + '__...' for p in SKORCH_PREFIXES)}) and "
                    f"{sorted(SKORCH_PLAIN)}."
                )
            setattr(self, key, value)

    def _skorch_param_names(self):
        return sorted(k for k in vars(self) if is_skorch_key(k))

    def _skorch_kwargs(self):
        """The skorch parameters given to this estimator, as a dict."""
        return {k: getattr(self, k) for k in self._skorch_param_names()}

    def get_params(self, deep=True):
        """Get parameters for this estimator, including the skorch ones (``module__...``).

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of contained estimators.

        Returns
        -------
        params : dict
        """
        params = super().get_params(deep=deep)
        params.update(self._skorch_kwargs())
        return params

    def set_params(self, **params):
        """Set parameters; skorch's prefixed parameters (``optimizer__weight_decay``) included.

        Parameters
        ----------
        **params : dict
            Estimator parameters, and skorch parameters in skorch's syntax; those are passed
            to the net built by the next ``fit``.

        Returns
        -------
        self
        """
        skorch = {k: v for k, v in params.items() if is_skorch_key(k)}
        own = {k: v for k, v in params.items() if k not in skorch}
        if own:
            super().set_params(**own)
        for key, value in skorch.items():
            setattr(self, key, value)
        return self

    # ------------------------------------------------------------------------- validation

    def _check_training_params(self):
        """Validate the shared parameters; returns the settings ``fit`` needs."""
        kwargs = self._skorch_kwargs()
        for key, instead in self._owned_skorch_keys.items():
            if key in kwargs:
                hint = f"use {instead}= instead" if instead else "it is set by the estimator"
                raise ValueError(f"{type(self).__name__}: {key!r} cannot be given; {hint}.")
        if isinstance(self.optimizer, str):
            if self.optimizer.lower() not in _OPTIMIZERS:
                raise ValueError(
                    f"unknown optimizer {self.optimizer!r}; expected one of "
                    f"{sorted(_OPTIMIZERS)} or a torch.optim.Optimizer class."
                )
        elif not (
            isinstance(self.optimizer, type) and issubclass(self.optimizer, torch.optim.Optimizer)
        ):
            raise ValueError(
                f"optimizer must be one of {sorted(_OPTIMIZERS)} or a torch.optim.Optimizer "
                f"class; got {self.optimizer!r}."
            )
        schedule = self.lr_schedule
        if not (
            schedule is None
            or (isinstance(schedule, str) and schedule in ("step", "cosine"))
            or isinstance(schedule, dict)
        ):
            raise ValueError(
                "lr_schedule must be None, 'step', 'cosine' or a dict {'policy': ..., **kwargs}; "
                f"got {schedule!r}."
            )
        es = self.early_stopping
        if not (
            es is None
            or isinstance(es, dict)
            or (isinstance(es, numbers.Integral) and not isinstance(es, bool) and es >= 1)
        ):
            raise ValueError(
                "early_stopping must be None, a patience (int >= 1) or a dict of EarlyStopping "
                f"arguments; got {es!r}."
            )
        vs = self.valid_split
        if not (
            vs is None
            or callable(vs)
            or (isinstance(vs, float) and 0.0 < vs < 1.0)
            or (isinstance(vs, numbers.Integral) and not isinstance(vs, bool) and vs >= 2)
        ):
            raise ValueError(
                "valid_split must be None, a fraction in (0, 1), a number of folds >= 2 (one "
                f"fold is held out) or a callable (dataset, y) -> (train, valid); got {vs!r}."
            )
        if self.amp not in ("auto", True, False, None, "bf16", "fp16"):
            raise ValueError(f"amp must be 'auto', False, 'bf16' or 'fp16'; got {self.amp!r}.")
        device = resolve_device(self.device)
        return {
            "device": device,
            "amp": resolve_amp(self.amp, device),
            "seed": seed_from(self.random_state),
        }

    @staticmethod
    def _encode_labels(y, n_samples):
        """``(classes, encoded y)``; ValueError for a length mismatch or a single class."""
        y = column_or_1d(y, warn=True)
        if len(y) != n_samples:
            raise ValueError(f"X has {n_samples} rows but y has {len(y)} labels.")
        kind = type_of_target(y)
        if kind not in ("binary", "multiclass"):
            raise ValueError(
                f"y must hold class labels (binary or multiclass); got target type {kind!r}."
            )
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            raise ValueError(
                f"y holds a single class ({encoder.classes_[0]!r}); a classifier needs samples "
                "of at least 2 classes."
            )
        return encoder.classes_, encoder.transform(y).astype(np.int64)

    # ---------------------------------------------------------------------------- training

    def _optimizer_settings(self):
        if not isinstance(self.optimizer, str):
            return self.optimizer, {}
        name = self.optimizer.lower()
        cls = getattr(torch.optim, _OPTIMIZERS[name])
        return cls, ({"optimizer__momentum": 0.9} if name == "sgd" else {})

    def _train_split(self, seed):
        vs = self.valid_split
        if vs is None:
            return None
        if callable(vs):
            return vs
        if isinstance(vs, float):
            return ValidSplit(vs, stratified=True, random_state=seed)
        return ValidSplit(int(vs), stratified=True)

    def _lr_scheduler(self):
        schedule = self.lr_schedule
        if schedule is None:
            return None
        if schedule == "step":
            return LRScheduler(policy="StepLR", step_size=10, gamma=0.5)
        if schedule == "cosine":
            return LRScheduler(policy="CosineAnnealingLR", T_max=self.max_epochs)
        kwargs = dict(schedule)
        policy = kwargs.pop("policy", None)
        aliases = {"step": "StepLR", "cosine": "CosineAnnealingLR"}
        if policy is None:
            raise ValueError("an lr_schedule dict needs a 'policy' (e.g. 'StepLR').")
        return LRScheduler(policy=aliases.get(policy, policy), **kwargs)

    def _early_stopping(self, has_valid):
        es = self.early_stopping
        if es is None:
            return None
        kwargs = {"patience": es} if isinstance(es, numbers.Integral) else dict(es)
        kwargs.setdefault("monitor", "valid_loss" if has_valid else "train_loss")
        kwargs.setdefault("load_best", True)
        kwargs.setdefault("sink", print if self.verbose else noop)
        return EarlyStopping(**kwargs)

    def _scoring_callbacks(self, has_valid):
        """Epoch scores computed from the batch outputs (subclasses add e.g. AUC)."""
        return []

    def _net_kwargs(self, settings, *, has_valid, run_dir):
        """Everything but the module / criterion, for the net's constructor."""
        device = settings["device"]
        on_cuda = device.startswith("cuda")
        optimizer, optimizer_kwargs = self._optimizer_settings()
        callbacks = list(self._scoring_callbacks(has_valid))
        es = self._early_stopping(has_valid)
        if es is not None:
            callbacks.append(("early_stopping", es))
        if run_dir is not None:
            checkpoint = Checkpoint(
                monitor=None,
                dirname=os.fspath(run_dir),
                f_criterion=None,
                event_name=None,
            )
            callbacks += [("load_state", LoadInitState(checkpoint)), ("checkpoint", checkpoint)]
        scheduler = self._lr_scheduler()
        if scheduler is not None:
            callbacks.append(("lr_scheduler", scheduler))
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar()))
        user = self._skorch_kwargs()
        user_callbacks = user.pop("callbacks", None)
        if user_callbacks == "disable":
            raise ValueError(
                "callbacks='disable' would also remove the history's losses; pass a list of "
                "extra callbacks, or set callbacks__<name>=None to drop one of "
                f"{list(CALLBACK_NAMES)}."
            )
        callbacks += list(user_callbacks or [])
        kwargs = {
            "optimizer": optimizer,
            "lr": self.lr,
            "max_epochs": self.max_epochs,
            "batch_size": self.batch_size,
            "iterator_train": DataLoader,
            "iterator_valid": DataLoader,
            "train_split": self._train_split(settings["seed"]),
            "callbacks": callbacks,
            "predict_nonlinearity": None,
            "verbose": int(self.verbose),
            "device": device,
            "amp": settings["amp"],
            "channels_last": on_cuda,
            "resume": run_dir is not None,
            "iterator_train__shuffle": True,
            "iterator_train__collate_fn": collate_batches,
            "iterator_valid__collate_fn": collate_batches,
            **optimizer_kwargs,
        }
        kwargs.update(user)
        return kwargs

    def _run_dir(self, fingerprint):
        """The checkpoint folder of this (settings, data) pair, or None."""
        if self.checkpoint_dir is None:
            return None
        ignored = {"verbose", "max_epochs", "checkpoint_dir", "device", "callbacks", "n_jobs"}
        params = {
            k: v
            for k, v in self.get_params(deep=False).items()
            if k not in ignored and not k.startswith(("iterator_", "callbacks__"))
        }
        try:
            key = joblib.hash((type(self).__name__, params, fingerprint))
        except Exception:  # unpicklable parameter values: fall back to their repr
            key = joblib.hash((type(self).__name__, repr(sorted(params.items())), fingerprint))
        return Path(self.checkpoint_dir) / f"run-{key[:16]}"

    def _fit_net(self, *, net_kwargs, dataset, y, settings, fingerprint=None):
        """Build ``net_`` from ``net_kwargs`` (module / criterion included) and train it.

        With ``checkpoint_dir``, training state is saved after every epoch in
        ``checkpoint_path_``; an interrupted fit of the same settings and data resumes there,
        and a finished one is loaded instead of retrained.
        """
        run_dir = self._run_dir(fingerprint)
        has_valid = self.valid_split is not None
        kwargs = {**self._net_kwargs(settings, has_valid=has_valid, run_dir=run_dir), **net_kwargs}
        net = self._net_class(**kwargs)
        self.checkpoint_path_ = None if run_dir is None else os.fspath(run_dir)
        done = _finished_run(run_dir, self.max_epochs)
        with training_context(settings["seed"], settings["device"]), warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=r".*lr_scheduler\.step\(\)", category=UserWarning
            )
            if done:
                net.initialize()
                net.load_params(
                    f_params=run_dir / "final_params.pt", f_history=run_dir / "final_history.json"
                )
                _log.info("%s: loaded the finished training run %s", type(self).__name__, run_dir)
            else:
                net.fit(dataset, y)
        net._set_training(False)  # hand out the module in inference mode (Grad-CAM, export)
        self.net_ = net
        self.device_ = str(net.device)
        epochs = len(net.history)
        stopped = _stopped_early(net)
        if not done and run_dir is not None and (stopped or epochs >= self.max_epochs):
            net.save_params(
                f_params=run_dir / "final_params.pt", f_history=run_dir / "final_history.json"
            )
            (run_dir / "finished.json").write_text(
                json.dumps({"epochs": epochs, "stopped_early": stopped})
            )
        if not done and not stopped and epochs < self.max_epochs:
            where = f"; fit again to resume from {run_dir}" if run_dir is not None else ""
            warnings.warn(
                f"{type(self).__name__}: training was interrupted after {epochs} of "
                f"{self.max_epochs} epochs{where}.",
                UserWarning,
                stacklevel=3,
            )
        return net

    # ---------------------------------------------------------------------------- inference

    def prepare_images(self, X):
        """The network's input for ``X``: read, cropped, resized, normalised; no augmentation.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort.

        Returns
        -------
        torch.Tensor of shape (n_patients, in_chans_, height, width)
            float32, on the CPU; exactly what the network is fed at inference.
        """
        check_is_fitted(self, "net_")
        check_cohort(self, X, self.preparer_.columns)
        return self.preparer_.prepare(X, n_jobs=self.n_jobs)[0]

    def _forward(self, dataset):
        """Outputs of the fitted module on ``dataset`` (eval mode, no augmentation), on the CPU."""
        check_is_fitted(self, "net_")
        on_cuda = self.device_.startswith("cuda")
        benchmark = torch.backends.cudnn.benchmark
        devices = [torch.device(self.device_).index or 0] if on_cuda else []
        # (DataLoader draws a seed from torch's global generator: leave the caller's alone)
        with torch.random.fork_rng(devices=devices):
            torch.backends.cudnn.benchmark = benchmark or on_cuda
            try:
                return self.net_.forward(dataset, training=False)
            finally:
                torch.backends.cudnn.benchmark = benchmark

    @property
    def module_(self):
        """The fitted torch module (on ``device_``)."""
        check_is_fitted(self, "net_")
        return self.net_.module_

    @property
    def history_(self):
        """skorch's :class:`~skorch.history.History` of the fit: one dict per epoch."""
        check_is_fitted(self, "net_")
        return self.net_.history

    # ------------------------------------------------------- weights-only (pickle-free) export

    _WEIGHTS_FILE = "weights.pt"
    _SETTINGS_FILE = "estimator.json"

    def _fitted_settings(self):  # pragma: no cover - overridden where supported
        raise TypeError(f"{type(self).__name__} has no weights-only export yet; pickle it.")

    def _restore_fitted(self, fitted, weights_path, settings):  # pragma: no cover
        raise TypeError(f"{type(self).__name__} has no weights-only export yet; pickle it.")

    def save_weights(self, folder):
        """Export the fitted estimator without pickle: its weights and its settings as JSON.

        ``folder`` receives ``weights.pt`` (the network's ``state_dict``: tensors only) and
        ``estimator.json`` (the estimator's parameters and what ``fit`` learned besides the
        weights: classes, positive class, channels, input size). Unlike a joblib pickle,
        reading them back with :meth:`load_weights` runs no code from the files
        (``torch.load(weights_only=True)`` and :mod:`json`).

        Parameters
        ----------
        folder : str or os.PathLike
            Created if missing.

        Returns
        -------
        pathlib.Path
            The folder.

        Raises
        ------
        TypeError
            For parameters that JSON cannot hold (a callable ``augment``, an optimizer class,
            extra skorch callbacks): those need the pickle.
        """
        check_is_fitted(self, "net_")
        params = self.get_params(deep=False)
        try:
            text = json.dumps(
                {
                    "estimator": type(self).__name__,
                    "params": params,
                    "fitted": self._fitted_settings(),
                },
                indent=2,
            )
        except TypeError as exc:
            raise TypeError(
                f"{type(self).__name__}.save_weights: a parameter cannot be written as JSON "
                f"({exc}); keep callables, classes and callbacks out, or pickle the estimator."
            ) from None
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.net_.save_params(f_params=folder / self._WEIGHTS_FILE)
        (folder / self._SETTINGS_FILE).write_text(text, encoding="utf-8")
        return folder

    @classmethod
    def load_weights(cls, folder, *, device="auto"):
        """Rebuild a fitted estimator from :meth:`save_weights`' folder, without unpickling.

        Parameters
        ----------
        folder : str or os.PathLike
            A folder written by :meth:`save_weights`.
        device : str, default="auto"
            Device of the rebuilt network.

        Returns
        -------
        estimator
            Fitted; it predicts as the exported one did.

        Raises
        ------
        ValueError
            When the folder holds another estimator's export or misses a file.
        """
        folder = Path(folder)
        paths = [folder / cls._SETTINGS_FILE, folder / cls._WEIGHTS_FILE]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise ValueError(f"{os.fspath(folder)!r} holds no export: {missing} missing.")
        content = json.loads(paths[0].read_text(encoding="utf-8"))
        if content.get("estimator") != cls.__name__:
            raise ValueError(
                f"{os.fspath(folder)!r} holds a {content.get('estimator')!r} export, not "
                f"{cls.__name__}."
            )
        params = {**content["params"], "device": device}
        estimator = cls(**params)
        estimator._validate_params()
        settings = estimator._check_training_params()
        estimator._restore_fitted(content["fitted"], paths[1], settings)
        return estimator

    def _load_net(self, net_kwargs, settings, weights_path):
        """The skorch net of ``net_kwargs``, initialised and given the exported weights."""
        kwargs = {**self._net_kwargs(settings, has_valid=False, run_dir=None), **net_kwargs}
        net = self._net_class(**kwargs)
        with training_context(settings["seed"], settings["device"]):
            net.initialize()
            net.load_params(f_params=weights_path)  # torch.load(weights_only=True)
        net._set_training(False)
        self.net_ = net
        self.device_ = str(net.device)
        return net

    # ------------------------------------------------------------------------------ pickle

    def __setstate__(self, state):
        super().__setstate__(state)
        net = self.__dict__.get("net_")
        if net is not None:
            # skorch maps CUDA tensors to the CPU when CUDA is unavailable here
            self.device_ = str(net.device)
            if not self.device_.startswith("cuda") and getattr(net, "module_", None) is not None:
                net.module_.to(memory_format=torch.contiguous_format)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.non_deterministic = not isinstance(self.random_state, numbers.Integral)
        return tags


def _finished_run(run_dir, max_epochs):
    if run_dir is None:
        return False
    marker = run_dir / "finished.json"
    if not (marker.is_file() and (run_dir / "final_params.pt").is_file()):
        return False
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return bool(info.get("stopped_early")) or int(info.get("epochs", 0)) >= max_epochs


def _stopped_early(net):
    for _, cb in getattr(net, "callbacks_", []):
        if isinstance(cb, EarlyStopping) and getattr(cb, "misses_", 0) >= cb.patience:
            return True
    return False
