"""The shared base of the neural classifiers: labels, weights, loss, AUC and predictions.

:class:`BaseNeuralClassifier` is what every classifier of the library stands on, whatever its
input (an image, a video clip, a bag of images, several modalities): label encoding with the
positive class never guessed (``pos_label``), class and sample weights in a weighted
cross-entropy (:class:`ClassifierNet`), the training and validation AUC of every epoch from
the batches' outputs, and ``predict`` / ``predict_proba`` / ``decision_function``. A concrete
classifier adds its parameters, its input (``_make_input``) and its module
(``_module_kwargs``, with :meth:`BaseNeuralClassifier._classifier_kwargs` for the criterion).
"""

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import column_or_1d
from skorch.callbacks import EpochScoring
from skorch.utils import to_numpy, to_tensor

from .._typing import MatrixLike
from ..inputs._base import as_target
from ..utils import resolve_pos_label
from ._base import BaseNeuralEstimator, document_training_parameters
from ._net import AcceleratedNet

#: numpydoc entries of the parameters every classifier shares.
CLASSIFIER_PARAMETER_DOCS = """\
class_weight : None, "balanced" or dict, default=None
    Weights of the classes in the loss (``{label: weight}``); ``"balanced"`` uses
    ``n_samples / (n_classes * count)``.
pos_label : scalar or None, default=None
    The positive class of binary labels (e.g. ``"N+"``): required unless the labels are
    0/1, -1/1 or booleans, since the sorted order of labels such as "N0" / "N+" says
    nothing about which one is the event. It is what Grad-CAM explains by default and
    what a report's probability column refers to."""


class WeightedCrossEntropyLoss(torch.nn.CrossEntropyLoss):
    """:class:`torch.nn.CrossEntropyLoss` whose class weights are given as plain numbers.

    Keeps tensors out of the net's constructor arguments (they are pickled as they are, while
    the criterion's own tensors follow the device-mapping rules of skorch's pickling).

    Parameters
    ----------
    class_weight : sequence of float or None, default=None
        Weight of each class (in the order of the encoded labels).
    **kwargs
        Other :class:`torch.nn.CrossEntropyLoss` arguments (``reduction``,
        ``label_smoothing``, ...).
    """

    def __init__(self, class_weight=None, **kwargs):
        weight = None
        if class_weight is not None:
            weight = torch.as_tensor(np.asarray(class_weight, dtype=np.float32))
        super().__init__(weight=weight, **kwargs)


class ClassifierNet(AcceleratedNet):
    """:class:`AcceleratedNet` whose loss honours class weights and per-sample weights.

    A batch's target is the label tensor, or ``(labels, sample_weights)``. The criterion
    returns per-sample losses (``reduction="none"``); the batch loss is their weighted mean
    ``sum(w_i l_i) / sum(w_i c_{y_i})`` with ``c`` the class weights of the criterion (the
    mean PyTorch's weighted ``CrossEntropyLoss`` computes, extended by sample weights).
    """

    def get_loss(self, y_pred, y_true, X=None, training=False):
        weights = None
        if isinstance(y_true, tuple | list):
            y_true, weights = y_true
        y_true = to_tensor(y_true, device=self.device)
        loss = self.criterion_(y_pred, y_true)
        if loss.ndim == 0:
            if weights is not None:
                raise ValueError(
                    "sample_weight needs a criterion that returns per-sample losses "
                    "(reduction='none')."
                )
            return loss
        class_weight = getattr(self.criterion_, "weight", None)
        denominator = class_weight[y_true] if class_weight is not None else None
        if weights is not None:
            weights = to_tensor(weights, device=self.device)
            loss = loss * weights
            denominator = weights if denominator is None else denominator * weights
        if denominator is None:
            return loss.mean()
        return loss.sum() / denominator.sum().clamp_min(torch.finfo(loss.dtype).tiny)


def _labels_of(target):
    """Labels of a batch target (``labels`` or ``(labels, sample_weights)``), as numpy."""
    if isinstance(target, tuple | list):
        target = target[0]
    return to_numpy(target)


def epoch_auc(net, X, y):
    """ROC AUC of the epoch's outputs (one-vs-rest macro AUC for more than two classes).

    Used by skorch's :class:`~skorch.callbacks.EpochScoring` with caching, so the outputs are
    those the training or validation batches already produced: no extra forward pass. NaN
    when ``y`` holds a single class.
    """
    if y is None:
        return float("nan")
    logits = net.forward(X).float()
    y = np.asarray(y)
    if logits.ndim != 2 or len(np.unique(y)) < 2:
        return float("nan")
    if logits.shape[1] == 2:
        return _binary_auc(y, to_numpy(logits[:, 1] - logits[:, 0]))
    proba = to_numpy(torch.softmax(logits, dim=1))
    try:
        return float(roc_auc_score(y, proba, multi_class="ovr", labels=np.arange(logits.shape[1])))
    except ValueError:
        return float("nan")


def _binary_auc(y, scores):
    """ROC AUC of scores for labels 0/1 (Mann-Whitney U with mid-ranks for ties)."""
    from scipy.stats import rankdata

    positive = y == 1
    n_pos = int(positive.sum())
    n_neg = len(y) - n_pos
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


class BaseNeuralClassifier(ClassifierMixin, BaseNeuralEstimator):
    """Base class of the neural classifiers (not used directly).

    Adds to :class:`~sklearn_alnm.models.BaseNeuralEstimator` the classification part of the
    fit template (labels encoded, ``pos_label`` resolved, sample and class weights checked,
    the target ``labels`` or ``(labels, sample_weights)``), the weighted cross-entropy
    criterion, the epoch AUC callbacks and the predictions. Subclasses implement
    ``_make_input`` and ``_module_kwargs`` (with :meth:`_classifier_kwargs` for the
    criterion) and a ``fit`` that calls :meth:`_fit`.

    Fitted attributes: ``classes_``, ``pos_label_``, ``class_weight_``.
    """

    _net_class = ClassifierNet

    _parameter_constraints = {
        **BaseNeuralEstimator._parameter_constraints,
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "pos_label": "no_validation",  # any label: checked against y in fit
    }

    _owned_skorch_keys = {
        **BaseNeuralEstimator._owned_skorch_keys,
        "module__num_classes": None,
        "criterion__weight": "class_weight",
        "criterion__class_weight": "class_weight",
    }

    # ------------------------------------------------------------------------------ labels

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

    def _check_sample_weight(self, sample_weight, n_samples):
        if sample_weight is None:
            return None
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.ndim == 0:
            weights = np.full(n_samples, float(weights))
        if weights.shape != (n_samples,):
            raise ValueError(f"sample_weight must have shape ({n_samples},); got {weights.shape}.")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError("sample_weight must be finite, non-negative and not all zero.")
        return weights

    def _resolve_pos_label(self, classes):
        """The positive class of binary labels (never guessed); None for multiclass."""
        if len(classes) == 2:
            return resolve_pos_label(classes, self.pos_label, owner=type(self).__name__)
        if self.pos_label is not None:
            raise ValueError(
                f"pos_label={self.pos_label!r} applies to binary labels; y has "
                f"{len(classes)} classes."
            )
        return None

    def _class_weights(self, classes, y_encoded):
        cw = self.class_weight
        if cw is None:
            return None
        if cw == "balanced":
            return compute_class_weight("balanced", classes=np.arange(len(classes)), y=y_encoded)
        unknown = [k for k in cw if k not in set(classes.tolist())]
        if unknown:
            raise ValueError(
                f"class_weight names labels {unknown} that are not in y; the classes are "
                f"{classes.tolist()}."
            )
        return np.array([float(cw.get(c, 1.0)) for c in classes.tolist()])

    def _training_target(self, X, y, sample_weight, state):
        classes, y_encoded = self._encode_labels(y, len(X))
        state.classes = classes
        state.pos_label = self._resolve_pos_label(classes)
        weights = self._check_sample_weight(sample_weight, len(X))
        state.class_weight = self._class_weights(classes, y_encoded)
        state.custom_criterion = "criterion" in self._skorch_kwargs()
        if state.custom_criterion and (state.class_weight is not None or weights is not None):
            raise ValueError(
                "class_weight and sample_weight need the default criterion (cross-entropy); "
                "do not pass criterion= together with them."
            )
        target = as_target(y_encoded, weights, dtypes=(torch.long, torch.float32))
        return target, y_encoded

    def _classifier_kwargs(self, n_classes, class_weight, custom_criterion):
        """The criterion arguments of the net (and ``module__num_classes``)."""
        kwargs = {"module__num_classes": n_classes}
        if not custom_criterion:
            kwargs["criterion"] = WeightedCrossEntropyLoss
            kwargs["criterion__reduction"] = "none"
            if class_weight is not None:
                kwargs["criterion__class_weight"] = tuple(float(w) for w in class_weight)
        return kwargs

    def _set_fitted(self, X, input, state):
        self.classes_ = state.classes
        self.pos_label_ = state.pos_label
        self.class_weight_ = state.class_weight

    def _fitted_labels(self):
        """What :meth:`save_weights` records of the labels."""
        return {
            "classes": self.classes_.tolist(),
            "pos_label": self.pos_label_,
            "class_weight": None if self.class_weight_ is None else list(self.class_weight_),
        }

    def _restore_labels(self, fitted):
        self.classes_ = np.asarray(fitted["classes"])
        self.pos_label_ = fitted["pos_label"]
        cw = fitted["class_weight"]
        self.class_weight_ = None if cw is None else np.asarray(cw)

    # ---------------------------------------------------------------------------- training

    def _scoring_callbacks(self, has_valid):
        callbacks = [
            (
                "train_auc",
                EpochScoring(
                    epoch_auc,
                    name="train_auc",
                    on_train=True,
                    lower_is_better=False,
                    use_caching=True,
                    target_extractor=_labels_of,
                ),
            )
        ]
        if has_valid:
            callbacks.append(
                (
                    "valid_auc",
                    EpochScoring(
                        epoch_auc,
                        name="valid_auc",
                        on_train=False,
                        lower_is_better=False,
                        use_caching=True,
                        target_extractor=_labels_of,
                    ),
                )
            )
        return callbacks

    # ---------------------------------------------------------------------------- inference

    def _logits(self, X):
        return self._forward(self._inference_dataset(X, **self._inference_kwargs())).double()

    def _inference_kwargs(self):
        """Keyword arguments of the input's ``dataset`` at inference (subclasses)."""
        return {}

    def predict_proba(self, X: MatrixLike) -> np.ndarray:
        """Class probabilities (softmax of the logits), in the order of ``classes_``.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort.

        Returns
        -------
        ndarray of shape (n_patients, n_classes)
        """
        return torch.softmax(self._logits(X), dim=1).numpy()

    def decision_function(self, X: MatrixLike) -> np.ndarray:
        """Logit of the positive class ``classes_[1]`` (binary), or all logits (multiclass).

        For two classes this is ``log(p1 / p0)``, so ``predict_proba(X)[:, 1]`` equals
        ``1 / (1 + exp(-decision_function(X)))``.

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort.

        Returns
        -------
        ndarray of shape (n_patients,) or (n_patients, n_classes)
        """
        logits = self._logits(X)
        if logits.shape[1] == 2:
            return (logits[:, 1] - logits[:, 0]).numpy()
        return logits.numpy()

    def predict(self, X: MatrixLike) -> np.ndarray:
        """Predicted labels (the class of highest probability).

        Parameters
        ----------
        X : pandas.DataFrame
            The cohort.

        Returns
        -------
        ndarray of shape (n_patients,)
        """
        logits = self._logits(X)  # NotFittedError before the classes are looked up
        return self.classes_[np.argmax(logits.numpy(), axis=1)]


def document_classifier(cls, **kwargs):
    """Fill the ``{classifier_parameters}`` and ``{training_parameters}`` lines of a
    classifier's docstring (see :func:`~sklearn_alnm.models._base.training_parameters_doc`)."""
    marker = "    {classifier_parameters}"
    if marker not in (cls.__doc__ or ""):
        raise TypeError(f"{cls.__name__}'s docstring has no {marker.strip()!r} line.")
    text = "\n".join("    " + line for line in CLASSIFIER_PARAMETER_DOCS.splitlines())
    cls.__doc__ = cls.__doc__.replace(marker, text)
    return document_training_parameters(cls, **kwargs)
