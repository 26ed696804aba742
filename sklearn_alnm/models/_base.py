"""The shared base of the skorch-backed estimators: parameters, routing and the fit template.

Every neural estimator of the library (classifiers, segmenters, and later the video,
multiple-instance and fusion models) is a scikit-learn estimator that *builds* a skorch net in
``fit`` (composition, not inheritance from skorch): the estimator's parameters are the study's
vocabulary (``backbone``, ``lr_schedule="step"``, ``class_weight="balanced"``), while any
skorch parameter can still be given in skorch's own prefixed form (``optimizer__weight_decay``,
``iterator_train__num_workers``, ``callbacks=[...]``, ``callbacks__lr_scheduler__step_size``)
and round-trips through ``get_params`` / ``set_params`` / ``clone``.

:class:`BaseNeuralEstimator` holds what every such estimator shares and nothing of its input
or task: the training parameters (their constraints in ``_parameter_constraints`` and their
documentation in :data:`TRAINING_PARAMETER_DOCS`, each written once), skorch parameter
routing, device resolution, AMP / channels-last on CUDA, seeding (torch's global generators
are forked, so a fit does not disturb the caller's random state), the training callbacks
(learning-rate schedule, early stopping, checkpoint / resume, progress bar), history,
weights-only export and pickling that loads on a CPU-only machine. ``fit`` is a template
(:meth:`BaseNeuralEstimator._fit`) whose steps the subclasses fill in: which input reads the
cohort (:mod:`sklearn_alnm.inputs`), what the targets are, which module and criterion train.
"""

import contextlib
import inspect
import json
import numbers
import os
import warnings
from pathlib import Path
from typing import Any, Self

import joblib
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import EarlyStopping, LoadInitState, LRScheduler, ProgressBar
from skorch.dataset import ValidSplit
from skorch.utils import noop
from torch.utils.data import DataLoader

from .._logging import get_logger
from .._typing import FilePath
from ..inputs._base import collate_batches
from ..utils import forked_torch_rng, resolve_device, seed_from
from ..utils._distributed import barrier, init_data_parallel, is_main_process
from ..utils._validation import CohortInputMixin
from ._net import AcceleratedNet, MainProcessCheckpoint

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
#: Devices on which Adam and AdamW run their fused kernel by default.
_FUSED_DEVICES = ("cpu", "cuda")
#: Names of the callbacks the estimators add (tunable through ``callbacks__<name>__<param>``).
CALLBACK_NAMES = ("train_auc", "valid_auc", "early_stopping", "load_state", "checkpoint")
CALLBACK_NAMES += ("lr_scheduler", "progress_bar")


def is_skorch_key(key):
    """Whether a keyword belongs to skorch (``module__x``, ``callbacks``, ...)."""
    if key in SKORCH_PLAIN:
        return True
    prefix, sep, rest = key.partition("__")
    return bool(sep and rest) and prefix in SKORCH_PREFIXES


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


class _OptimizerOption(StrOptions):
    """An optimizer name (any case) or a :class:`torch.optim.Optimizer` subclass."""

    def __init__(self):
        super().__init__(set(_OPTIMIZERS))

    def is_satisfied_by(self, val):
        if isinstance(val, str):
            return val.lower() in self.options
        return isinstance(val, type) and issubclass(val, torch.optim.Optimizer)

    def __str__(self):
        return (
            f"one of {sorted(self.options)} (an unknown optimizer name is refused) or a "
            "torch.optim.Optimizer class"
        )


#: Constraints of the training parameters every neural estimator shares.
TRAINING_CONSTRAINTS = {
    "optimizer": [_OptimizerOption()],
    "lr": [Interval(numbers.Real, 0, None, closed="neither")],
    "lr_schedule": [None, StrOptions({"step", "cosine"}), dict],
    "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
    "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
    "early_stopping": [None, Interval(numbers.Integral, 1, None, closed="left"), dict],
    "valid_split": [
        None,
        Interval(numbers.Real, 0, 1, closed="neither"),
        Interval(numbers.Integral, 2, None, closed="left"),
        callable,
    ],
    "checkpoint_dir": [None, str, os.PathLike],
    "n_jobs": [None, numbers.Integral],
    "device": "no_validation",  # checked (and resolved) by resolve_device
    "amp": [StrOptions({"auto", "bf16", "fp16"}), "boolean", None],
    "distributed": ["boolean", dict],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}

#: numpydoc entries of the shared training parameters (``{default}`` is filled in from the
#: estimator's signature, ``{batch}`` names what a batch holds, ``{split}`` how the
#: validation part is drawn); :func:`training_parameters_doc` renders them.
TRAINING_PARAMETER_DOCS = {
    "optimizer": """\
optimizer : {{"adam", "adamw", "sgd"}} or torch.optim.Optimizer class, default={default}
    ``"sgd"`` uses momentum 0.9; ``"adam"`` and ``"adamw"`` their fused kernel on CPU
    and CUDA (``optimizer__fused=False`` or ``optimizer__foreach=True`` to choose
    another). Other optimizer arguments go through skorch's ``optimizer__<name>``
    (e.g. ``optimizer__weight_decay=1e-4``).""",
    "lr": """\
lr : float, default={default}
    Initial learning rate.""",
    "lr_schedule": """\
lr_schedule : None, "step", "cosine" or dict, default={default}
    Stepped once per epoch. ``"step"``: halve the rate every 10 epochs
    (``StepLR(step_size=10, gamma=0.5)``); ``"cosine"``: cosine decay to 0 over
    ``max_epochs`` (``CosineAnnealingLR(T_max=max_epochs)``). Their arguments can be
    changed with ``callbacks__lr_scheduler__step_size=...`` etc. A dict
    ``{{"policy": "StepLR" | "step" | "cosine" | a scheduler class, **kwargs}}`` gives any
    torch scheduler. The rate of each epoch is recorded in ``history_`` (``"event_lr"``).""",
    "max_epochs": """\
max_epochs : int, default={default}
    Number of training epochs (in total when resuming from a checkpoint).""",
    "batch_size": """\
batch_size : int, default={default}
    {batch} per batch (training and inference).""",
    "early_stopping": """\
early_stopping : None, int or dict, default={default}
    Stop when the validation loss (the training loss without ``valid_split``) has not
    improved for this many epochs, and restore the weights of the best epoch. A dict gives
    :class:`skorch.callbacks.EarlyStopping` arguments (``monitor``, ``patience``,
    ``load_best``, ...).""",
    "valid_split": """\
valid_split : None, float, int or callable, default={default}
    Hold out a {split} validation part of the training data (a fraction, or 1/k for an
    int k), seeded by ``random_state``, for the validation scores of each epoch; or a
    callable ``(dataset, y) -> (dataset_train, dataset_valid)`` (skorch's ``train_split``).""",
    "checkpoint_dir": """\
checkpoint_dir : None, str or os.PathLike, default={default}
    Folder for checkpoints. Each run (estimator settings + training data, ``max_epochs``
    and ``verbose`` excepted) gets a sub-folder ``run-<hash>`` (``checkpoint_path_``) where
    the weights, optimizer state and history are saved after every epoch. A ``fit`` whose
    run folder holds an unfinished run resumes at the stored epoch (so an interrupted fit,
    e.g. by Ctrl-C or a crash, continues where it stopped), and one holding a finished run
    loads it instead of training again; a larger ``max_epochs`` continues a finished run.
    Delete the folder to start over. Random number streams are not restored, so a resumed
    run is not bitwise identical to an uninterrupted one.""",
    "n_jobs": """\
n_jobs : int or None, default={default}
    Threads reading and preparing the cohort's files.""",
    "device": """\
device : str, default={default}
    ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``. On
    CUDA the model and 4-D inputs use the channels-last memory format, batches come from
    pinned memory (read by two loader workers when they are read from files), and cuDNN
    autotuning is on.""",
    "amp": """\
amp : "auto", False, "bf16" or "fp16", default={default}
    Mixed precision on CUDA: ``"auto"`` uses bfloat16 where supported, else float16 with
    gradient scaling. Always off on the CPU.""",
    "distributed": """\
distributed : bool or dict, default={default}
    Train data-parallel over the processes of a ``torchrun`` or ``accelerate launch`` run
    (:class:`~torch.nn.parallel.DistributedDataParallel`: gloo on the CPU, NCCL on CUDA with
    one GPU per process); a dict passes its options to DDP (e.g.
    ``{{"find_unused_parameters": True}}``). ``batch_size`` is then the global batch, split
    evenly over the processes (a multiple of their number); every rank ends with the same
    module and history, and only rank 0 writes checkpoints. Run as a plain script, the fit
    is one process of one drawing its batches in the same order. See the user guide's page
    "From one machine to a cluster".""",
    "random_state": """\
random_state : int, RandomState instance or None, default={default}
    Seeds the initialisation, the validation split, shuffling, dropout and augmentation.
    Torch's global generators are forked during ``fit``, so the caller's random state is
    left untouched. With an int, two fits on the CPU give identical models.""",
    "verbose": """\
verbose : int, default={default}
    ``0``: silent. ``>0``: a progress bar (tqdm) per epoch and skorch's epoch table.""",
    "skorch_kwargs": """\
**skorch_kwargs
    Any other :class:`skorch.NeuralNet` argument in skorch's syntax:
    ``module__<arg>`` (network arguments other than those above){module_hint},
    ``optimizer__<arg>``, ``criterion`` / ``criterion__<arg>``, ``iterator_train__<arg>`` /
    ``iterator_valid__<arg>`` (DataLoader arguments such as ``num_workers``),
    ``callbacks`` (a list of extra skorch callbacks) and ``callbacks__<name>__<arg>``,
    ``compile``. They are parameters of the estimator like any other (``get_params``,
    ``set_params``, ``clone``, ``GridSearchCV``).""",
}


def training_parameters_doc(cls, *, batch="Samples", split="stratified", module_hint="", skip=()):
    """The numpydoc entries of the shared training parameters, defaults read from ``cls``.

    Parameters
    ----------
    cls : type
        The estimator class; its ``__init__`` gives the defaults (so the documentation cannot
        drift from the signature).
    batch : str, default="Samples"
        What a batch holds, for ``batch_size``.
    split : str, default="stratified"
        How the validation part is drawn (``"stratified"``, ``"random"``).
    module_hint : str, default=""
        Appended to the ``module__<arg>`` hint of ``**skorch_kwargs``.
    skip : tuple of str, default=()
        Shared parameters the estimator documents itself.

    Returns
    -------
    str
    """
    signature = inspect.signature(cls.__init__).parameters
    entries = []
    for name, text in TRAINING_PARAMETER_DOCS.items():
        if name in skip:
            continue
        if name == "skorch_kwargs":
            entries.append(text.format(module_hint=module_hint))
            continue
        if name not in signature:
            raise TypeError(f"{cls.__name__}.__init__ has no shared parameter {name!r}.")
        default = signature[name].default
        shown = f'"{default}"' if isinstance(default, str) else repr(default)
        entries.append(text.format(default=shown, batch=batch, split=split))
    return "\n".join(entries)


def document_training_parameters(cls, **kwargs):
    """Fill the ``{training_parameters}`` line of ``cls.__doc__`` (4-space indented)."""
    marker = "    {training_parameters}"
    if marker not in (cls.__doc__ or ""):
        raise TypeError(f"{cls.__name__}'s docstring has no {marker.strip()!r} line.")
    doc = training_parameters_doc(cls, **kwargs)
    cls.__doc__ = cls.__doc__.replace(
        marker, "\n".join(("    " + line) if line else line for line in doc.splitlines())
    )
    return cls


def training_context(seed, device):
    """Seed torch's generators inside a fork of their state; cuDNN autotuning on CUDA."""

    @contextlib.contextmanager
    def context():
        benchmark = torch.backends.cudnn.benchmark
        with forked_torch_rng(seed, device):
            if str(device).startswith("cuda"):
                torch.backends.cudnn.benchmark = True
            try:
                yield
            finally:
                torch.backends.cudnn.benchmark = benchmark

    return context()


class BaseNeuralEstimator(CohortInputMixin, BaseEstimator):
    """Base class of the skorch-backed estimators (not used directly).

    Subclasses declare their parameters in ``__init__`` (stored by
    :meth:`_store_parameters`, skorch keywords included), extend ``_parameter_constraints``
    (the shared training constraints :data:`TRAINING_CONSTRAINTS` are already there) and
    implement the steps of the fit template :meth:`_fit`:

    - ``_make_input(state)``: the :class:`~sklearn_alnm.inputs.BaseInput` reading the cohort;
    - ``_training_target(X, y, sample_weight, state)``: ``(target, y_split)``, the dataset's
      target and the labels a stratified validation split uses (default: no target);
    - ``_training_dataset(input, X, target, state)``: the training dataset (default: the
      input's ``dataset``);
    - ``_module_kwargs(input, state)``: the net's ``module`` / ``criterion`` arguments;
    - ``_set_fitted(X, input, state)``: the fitted attributes besides ``input_`` and ``net_``;
    - ``_check_settings(state)``: cross-parameter checks before any file is read.

    ``state`` is a :class:`~sklearn.utils.Bunch` of one fit (``device``, ``amp``, ``seed``
    and what the steps add). Fitted attributes: ``input_``, ``net_`` (the skorch net),
    ``device_``, ``checkpoint_path_``; properties ``module_`` and ``history_``.
    """

    #: The skorch net class built by ``fit``.
    _net_class = AcceleratedNet

    _parameter_constraints = dict(TRAINING_CONSTRAINTS)

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

    def get_params(self, deep: bool = True) -> dict[str, Any]:
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

    def set_params(self, **params: Any) -> Self:
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
        """Validate what constraints cannot say; returns the settings ``fit`` needs."""
        kwargs = self._skorch_kwargs()
        for key, instead in self._owned_skorch_keys.items():
            if key in kwargs:
                hint = f"use {instead}= instead" if instead else "it is set by the estimator"
                raise ValueError(f"{type(self).__name__}: {key!r} cannot be given; {hint}.")
        device = resolve_device(self.device)
        distributed = None
        option = getattr(self, "distributed", False)  # an estimator may not offer it
        if option is not False:
            distributed = {} if option is True else dict(option)
            device = _data_parallel_device(device)
        return Bunch(
            device=device,
            amp=resolve_amp(self.amp, device),
            seed=seed_from(self.random_state),
            distributed=distributed,
        )

    # ------------------------------------------------------------------------ fit template

    def _check_settings(self, state):
        """Cross-parameter and network checks before any file is read (subclasses)."""

    def _prepare_fit(self, X, y, sample_weight, state):
        """Work on the training data before the input is made, e.g. fitting sub-models
        (subclasses)."""

    def _make_input(self, state):  # pragma: no cover - abstract
        raise NotImplementedError

    def _training_target(self, X, y, sample_weight, state):
        """``(target of the dataset, labels of a stratified split)``; none by default."""
        return None, None

    def _training_dataset(self, input, X, target, state):
        return input.dataset(X, target, n_jobs=self.n_jobs, verbose=self.verbose)

    def _module_kwargs(self, input, state):  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_fitted(self, X, input, state):
        """Fitted attributes besides ``input_`` and ``net_`` (subclasses)."""

    def _fit(self, X, y=None, sample_weight=None):
        """The fit template: validate, read the cohort through the input, train the net."""
        self._validate_params()
        state = self._check_training_params()
        self._check_settings(state)
        self._prepare_fit(X, y, sample_weight, state)
        input = self._make_input(state)
        input.check(self, X, training=True)
        target, y_split = self._training_target(X, y, sample_weight, state)
        dataset = self._training_dataset(input, X, target, state)
        net_kwargs = self._module_kwargs(input, state)
        fingerprint = None
        if self.checkpoint_dir is not None:
            fingerprint = input.content_key(dataset)
        self._fit_net(
            net_kwargs=net_kwargs,
            dataset=dataset,
            y=y_split,
            settings=state,
            collate_fn=input.collate_fn,
            fingerprint=fingerprint,
            epochs=state.get("epochs"),
        )
        self.input_ = input
        self._set_fitted(X, input, state)
        _log.info(
            "%s: %d epochs on %d rows (%r) on %s",
            type(self).__name__,
            len(self.net_.history),
            len(X),
            input,
            self.device_,
        )
        return self

    # ---------------------------------------------------------------------------- training

    def _optimizer_settings(self, device="cpu", user=()):
        """The optimizer class and its skorch arguments for ``device``.

        Adam and AdamW use their fused kernel on CPU and CUDA (one kernel over all
        parameters instead of a loop of small ones; ``benchmarks/bench_cpu_training.py``: a
        ResNet18's Adam step in 5 ms instead of 30 ms on two CPU cores) unless the user chose
        ``optimizer__fused`` or ``optimizer__foreach`` (``user``: the skorch arguments).
        """
        if not isinstance(self.optimizer, str):
            return self.optimizer, {}
        name = self.optimizer.lower()
        cls = getattr(torch.optim, _OPTIMIZERS[name])
        if name == "sgd":
            return cls, {"optimizer__momentum": 0.9}
        chosen = {"optimizer__fused", "optimizer__foreach"} & set(user)
        if not chosen and torch.device(device).type in _FUSED_DEVICES:
            return cls, {"optimizer__fused": True}
        return cls, {}

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

    def _training_callbacks(self):
        """Further ``(name, callback)`` pairs of the estimator, e.g. a freezing schedule
        (subclasses)."""
        return []

    def _net_kwargs(self, settings, *, has_valid, run_dir, collate_fn=None):
        """Everything but the module / criterion, for the net's constructor (``collate_fn``:
        the input's; by default batches assembled by the datasets pass unchanged)."""
        settings = Bunch(**settings)
        if collate_fn is None:
            collate_fn = collate_batches
        device = settings.device
        on_cuda = device.startswith("cuda")
        user = self._skorch_kwargs()
        optimizer, optimizer_kwargs = self._optimizer_settings(device, user)
        callbacks = list(self._scoring_callbacks(has_valid)) + list(self._training_callbacks())
        es = self._early_stopping(has_valid)
        if es is not None:
            callbacks.append(("early_stopping", es))
        if run_dir is not None:
            checkpoint = MainProcessCheckpoint(
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
            "train_split": self._train_split(settings.seed),
            "callbacks": callbacks,
            "predict_nonlinearity": None,
            "verbose": int(self.verbose),
            "device": device,
            "amp": settings.amp,
            "channels_last": on_cuda,
            "resume": run_dir is not None,
            "distributed": settings.get("distributed"),
            "iterator_train__shuffle": True,
            "iterator_train__collate_fn": collate_fn,
            "iterator_valid__collate_fn": collate_fn,
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

    def _fit_net(
        self, *, net_kwargs, dataset, y, settings, collate_fn, fingerprint=None, epochs=None
    ):
        """Build ``net_`` from ``net_kwargs`` (module / criterion included) and train it.

        With ``checkpoint_dir``, training state is saved after every epoch in
        ``checkpoint_path_``; an interrupted fit of the same settings and data resumes there,
        and a finished one is loaded instead of retrained. ``epochs=0`` only initialises the
        net (a model with nothing left to train, such as late fusion of fitted models).
        """
        if epochs == 0:
            net = self._net_class(
                **{
                    **self._net_kwargs(
                        settings, has_valid=False, run_dir=None, collate_fn=collate_fn
                    ),
                    **net_kwargs,
                }
            )
            with training_context(settings.seed, settings.device):
                net.initialize()
            net._set_training(False)
            self.net_ = net
            self.device_ = str(net.device)
            self.checkpoint_path_ = None
            return net
        run_dir = self._run_dir(fingerprint)
        has_valid = self.valid_split is not None
        base = self._net_kwargs(
            settings, has_valid=has_valid, run_dir=run_dir, collate_fn=collate_fn
        )
        kwargs = {**base, **net_kwargs}
        net = self._net_class(**kwargs)
        self.checkpoint_path_ = None if run_dir is None else os.fspath(run_dir)
        done = _finished_run(run_dir, self.max_epochs)
        with training_context(settings.seed, settings.device), warnings.catch_warnings():
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
            if is_main_process():
                net.save_params(
                    f_params=run_dir / "final_params.pt",
                    f_history=run_dir / "final_history.json",
                )
                (run_dir / "finished.json").write_text(
                    json.dumps({"epochs": epochs, "stopped_early": stopped})
                )
            barrier()  # no rank starts another fit before the run is marked finished
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

    def _inference_dataset(self, X, **kwargs):
        """The fitted input's dataset of ``X`` (no target), after checking the cohort."""
        check_is_fitted(self, "net_")
        self.input_.check(self, X)
        return self.input_.dataset(X, n_jobs=self.n_jobs, **kwargs)

    def _inference(self):
        """The context of inference: the caller's torch generators forked (a DataLoader draws
        a seed from them), cuDNN autotuning on CUDA."""
        return training_context(None, self.device_)

    def _forward(self, dataset):
        """Outputs of the fitted module on ``dataset`` (eval mode, no augmentation), on the CPU."""
        check_is_fitted(self, "net_")
        with self._inference():
            return self.net_.forward(dataset, training=False)

    def _forward_iter(self, dataset):
        """The fitted module's outputs batch by batch, as the module returns them."""
        check_is_fitted(self, "net_")
        with self._inference():
            yield from self.net_.forward_iter(dataset, training=False, device=None)

    def _map_batches(self, dataset, fn):
        """``[fn(module, batch inputs) for each batch]`` in eval mode without gradients, the
        inputs moved to the device as in prediction (e.g. a module's attention weights)."""
        check_is_fitted(self, "net_")
        module = self.module_
        out = []
        with self._inference(), torch.inference_mode():
            module.eval()
            for batch in self.net_.get_iterator(dataset, training=False):
                out.append(fn(module, self.net_._inference_batch(batch[0])))
        return out

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

    def save_weights(self, folder: FilePath) -> Path:
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
    def load_weights(cls, folder: FilePath, *, device: str = "auto") -> Self:
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

    def _load_net(self, net_kwargs, settings, weights_path, collate_fn):
        """The skorch net of ``net_kwargs``, initialised and given the exported weights."""
        base = self._net_kwargs(settings, has_valid=False, run_dir=None, collate_fn=collate_fn)
        kwargs = {**base, **net_kwargs}
        net = self._net_class(**kwargs)
        with training_context(settings.seed, settings.device):
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
        tags.non_deterministic = not isinstance(self.random_state, numbers.Integral)
        return tags


def _data_parallel_device(device):
    """Join the launched process group (if any); on CUDA each process takes its own GPU."""
    info = init_data_parallel(device)
    dev = torch.device(device)
    if dev.type != "cuda" or info.world_size == 1:
        return device
    if dev.index is not None and dev.index != info.local_rank:
        raise ValueError(
            f"device={device!r}: in a data-parallel run each process trains on its own GPU "
            f"(this one: cuda:{info.local_rank}); pass device='cuda' or 'auto'."
        )
    return f"cuda:{info.local_rank}"


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
