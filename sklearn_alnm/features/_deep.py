"""Deep features: the penultimate-layer embedding of a CNN / ViT backbone for each image or ROI.

The deep-learning signatures of the mammography radiomics + deep-learning fusion study are
built from such embeddings (ResNet18 on the craniocaudal and mediolateral-oblique lesion ROIs),
then z-scored and selected like radiomics features. :class:`DeepFeatures` computes them for a
cohort column, with the backbones of :mod:`sklearn_alnm.nn`, offline weights, batched
inference and a content cache, so that tuning the downstream selector and classifier never
recomputes them.
"""

import contextlib
import copy
import numbers
import os
import time
import warnings

import joblib
import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from .._logging import get_logger
from ..inputs._image import check_intensity_range
from ..io import read_cell
from ..utils import CohortInputError, FeatureCache, resolve_cache, resolve_device, seed_from
from ..utils._imaging import (
    EMPTY_MASK_POLICIES,
    empty_mask_box,
    match_channels,
    normalize_images,
    resize_image,
    to_unit_range,
)
from ..utils._imaging import intensity_bounds as _intensity_bounds
from ..utils._imaging import mask_box as _mask_box
from ._base import BaseCohortFeatures

_log = get_logger(__name__)

#: Bumped whenever the preprocessing changes, so older cache entries are not reused.
_PREPROCESSING_VERSION = 1
_CACHE_NAMESPACE = "deep"


class DeepFeatures(BaseCohortFeatures):
    """Penultimate-layer embeddings of a pretrained (or seeded random) backbone, per patient.

    Each image, or the rectangle around its lesion mask, is mapped to ``[0, 1]``, resized to
    ``input_size``, normalised and passed through the backbone in inference mode; the output
    of the layer before the classification head (512 values for ResNet18, 2048 for ResNet50,
    ...) becomes the row's features ``deep_0 ... deep_{d-1}``. Grayscale images are
    replicated to the three input channels; RGB images (pathology tiles) are used as they are.

    Parameters
    ----------
    image_col : str, default="image"
        Cohort column holding the images (paths or arrays, see :func:`sklearn_alnm.io.read_image`).
    mask_col : str or None, default=None
        Cohort column holding the lesion masks, on the grid of the images. Without it (or with
        ``crop=None``) the whole image is used and no mask is read.
    backbone : str, default="resnet18"
        A registered backbone (:func:`sklearn_alnm.nn.available_backbones`): ``resnet18``,
        ``resnet50``, ``resnet101``, ``densenet121``, ``vgg19``, ``inception_v3``,
        ``googlenet``, ``squeezenet1_1``, ``vit_b_16``, ...
    weights : None, str or os.PathLike, default=None
        ``None``: random initialisation seeded by ``random_state`` (reproducible, but not
        meaningful features: use pretrained weights for real studies). ``"DEFAULT"`` or a
        torchvision weights name (``"IMAGENET1K_V1"``, ``"ResNet18_Weights.IMAGENET1K_V1"``):
        the ImageNet weights, which must already be in the local torch hub cache (nothing is
        downloaded; the error says which file to put where). A path: a local checkpoint
        (state dict), e.g. a network fine-tuned on breast images; its head is ignored.
        See :func:`sklearn_alnm.nn.resolve_weights`.
    crop : {"mask_bbox"} or None, default="mask_bbox"
        With ``mask_col``: ``"mask_bbox"`` uses the smallest rectangle holding every non-zero
        mask pixel, enlarged by ``margin`` and clipped to the image. ``None``: the whole image.
    empty : {"whole", "center", "error"}, default="whole"
        What an empty mask gives, as in :class:`~sklearn_alnm.preprocessing.ROICropper`: the
        whole image, a centred rectangle of ``center_fraction`` of its height and width, or a
        ``ValueError`` naming the row. Rows with empty masks are counted in a warning.
    center_fraction : float in (0, 1], default=0.5
        Side fraction of the centred rectangle of ``empty="center"``.
    margin : int or float, default=0
        Added on each side of the mask's rectangle: an ``int`` counts pixels, a ``float``
        is a fraction of the rectangle's height (top and bottom) and width (left and right),
        e.g. ``0.1`` for 10 %.
    input_size : int or tuple of 2 int, default=224
        Height and width the image or crop is resized to (bilinear, antialiased). At least the
        backbone's minimum (75 for ``inception_v3``, 32 for the others); ``vit_b_16`` is built
        for this size (a multiple of 16; pretrained position embeddings are interpolated).
    normalize : {"imagenet", "zscore"}, default="imagenet"
        ``"imagenet"``: subtract ImageNet's channel means ``(0.485, 0.456, 0.406)`` and divide
        by its standard deviations ``(0.229, 0.224, 0.225)``, as the pretrained weights expect.
        ``"zscore"``: subtract the resized image's own mean and divide by its standard
        deviation (over all pixels and channels), which removes brightness and contrast
        differences between devices.
    intensity_range : "auto" or tuple of 2 float, default="auto"
        How intensities are mapped to ``[0, 1]`` before normalisation:
        ``x' = clip((x - low) / (high - low), 0, 1)``. ``"auto"`` uses ``(0, 255)`` for images
        whose values lie in that range (8-bit PNG / JPEG / ultrasound exports) and the image's
        own minimum and maximum otherwise (e.g. 12-bit mammograms). The whole image sets the
        range, so a crop keeps its brightness relative to the image. A fixed
        ``(low, high)`` (e.g. ``(0, 4095)``) treats all images alike.
    batch_size : int, default=32
        Number of images per forward pass.
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
        On CUDA the forward pass uses automatic mixed precision (bfloat16 where supported,
        else float16) and the channels-last memory format.
    cache : None, str, os.PathLike, joblib.Memory or FeatureCache, default=None
        Where to cache each row's features (namespace ``"deep"``, see
        :class:`~sklearn_alnm.utils.FeatureCache`). The key is the decoded image and mask,
        every setting that changes the output (backbone, crop, margin, input size,
        normalisation, intensity range, the numeric precision) and a fingerprint of the
        backbone weights; never a path. Rows found in the cache are not recomputed.
    prefix : str or None, default=None
        Prepended to the output names, e.g. ``"cc_"`` gives ``cc_deep_0, ...``.
    random_state : int, RandomState instance or None, default=None
        Seeds the random initialisation when ``weights=None`` (and any other random parameter
        of the network), so two fits, a clone and a pickled copy give identical features.
        Torch's global generator is not touched.
    verbose : int, default=0
        Show a progress bar (tqdm) when > 0. Progress is also logged to the ``sklearn_alnm``
        logger.

    Attributes
    ----------
    backbone_ : sklearn_alnm.nn.Backbone
        The network (on the CPU, in eval mode; moved to ``device`` for each ``transform``).
        It travels with the pickle, so a transformer fitted on a GPU machine loads and runs on
        a CPU-only one.
    weights_source_ : str
        ``"random (seed N)"``, the torchvision weights (``"ResNet18_Weights.IMAGENET1K_V1"``)
        or the checkpoint path.
    weights_fingerprint_ : str
        SHA-256 of the backbone's state dict (:func:`sklearn_alnm.nn.state_dict_fingerprint`),
        part of every cache key.
    input_size_ : tuple of 2 int
        ``(height, width)`` given to the network.
    feature_names_out_ : list of str
        ``prefix + "deep_<k>"`` for ``k`` in ``0 .. d - 1``.

    See Also
    --------
    sklearn_alnm.nn.build_backbone : The networks.
    sklearn_alnm.utils.FeatureCache : The content-addressed cache.

    Notes
    -----
    For each row: read the image (and mask) with :func:`sklearn_alnm.io.read_cell`, map the
    intensities to ``[0, 1]`` (``intensity_range``), cut the mask's rectangle (``crop``,
    ``margin``), resize to ``input_size`` with
    ``torch.nn.functional.interpolate(mode="bilinear", antialias=True)``, replicate a gray
    channel to three, normalise (``normalize``) and stack into batches. The backbone runs in
    eval mode under ``torch.inference_mode``; the embedding is returned as float64.

    Features of a randomly initialised network (``weights=None``) are deterministic given
    ``random_state`` but carry only generic image statistics; they are meant for tests,
    demos and baselines.

    References
    ----------
    .. [1] K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition",
       CVPR 2016 (ResNet18/50/101, the usual backbones of deep-feature signatures).

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn_alnm.features._deep import DeepFeatures
    >>> rng = np.random.default_rng(0)
    >>> images = [rng.uniform(0, 255, (40, 40)).astype(np.float32) for _ in range(3)]
    >>> mask = np.zeros((40, 40), dtype=np.uint8)
    >>> mask[10:30, 12:28] = 1
    >>> X = pd.DataFrame({"patient_id": ["P1", "P2", "P3"], "image": images,
    ...                   "mask": [mask] * 3})
    >>> deep = DeepFeatures(mask_col="mask", backbone="resnet18", input_size=32,
    ...                     random_state=0)
    >>> features = deep.fit_transform(X)
    >>> features.shape
    (3, 512)
    >>> deep.get_feature_names_out()[:3].tolist()
    ['deep_0', 'deep_1', 'deep_2']
    """

    _parameter_constraints = {
        "image_col": [str],
        "mask_col": [None, str],
        "backbone": [str],
        "weights": "no_validation",  # None, a name, a path or an enum member: resolve_weights
        "crop": [StrOptions({"mask_bbox"}), None],
        "empty": [StrOptions(set(EMPTY_MASK_POLICIES))],
        "center_fraction": [Interval(numbers.Real, 0, 1, closed="right")],
        "margin": [
            Interval(numbers.Integral, 0, None, closed="left"),
            Interval(numbers.Real, 0, None, closed="left"),
        ],
        "input_size": [Interval(numbers.Integral, 1, None, closed="left"), tuple, list],
        "normalize": [StrOptions({"imagenet", "zscore"})],
        "intensity_range": [StrOptions({"auto"}), tuple, list],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "device": "no_validation",  # checked by resolve_device
        "cache": [None, str, os.PathLike, joblib.Memory, FeatureCache],
        "prefix": [None, str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        image_col="image",
        mask_col=None,
        *,
        backbone="resnet18",
        weights=None,
        crop="mask_bbox",
        empty="whole",
        center_fraction=0.5,
        margin=0,
        input_size=224,
        normalize="imagenet",
        intensity_range="auto",
        batch_size=32,
        device="auto",
        cache=None,
        prefix=None,
        random_state=None,
        verbose=0,
    ):
        self.image_col = image_col
        self.mask_col = mask_col
        self.backbone = backbone
        self.weights = weights
        self.crop = crop
        self.empty = empty
        self.center_fraction = center_fraction
        self.margin = margin
        self.input_size = input_size
        self.normalize = normalize
        self.intensity_range = intensity_range
        self.batch_size = batch_size
        self.device = device
        self.cache = cache
        self.prefix = prefix
        self.random_state = random_state
        self.verbose = verbose

    def _input_columns(self):
        return [self.image_col, self.mask_col if self._crops() else None]

    def _crops(self):
        return self.crop is not None and self.mask_col is not None

    # ---------------------------------------------------------------------------------- fit

    def _check_settings(self):
        if isinstance(self.margin, bool):
            raise ValueError(f"margin must be an int (pixels) or a float; got {self.margin!r}.")
        if isinstance(self.input_size, numbers.Integral):
            size = (int(self.input_size), int(self.input_size))
        else:
            size = tuple(self.input_size)
            if len(size) != 2 or not all(
                isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in size
            ):
                raise ValueError(
                    "input_size must be a positive int or a (height, width) pair of positive "
                    f"ints; got {self.input_size!r}."
                )
            size = (int(size[0]), int(size[1]))
        intensity = check_intensity_range(self.intensity_range)
        resolve_device(self.device)  # invalid or unavailable devices fail at fit time
        resolve_cache(self.cache)
        return size, intensity

    def _fit(self, X):
        from ..nn import build_backbone, state_dict_fingerprint

        size, intensity = self._check_settings()
        seed = seed_from(self.random_state)
        backbone = build_backbone(
            self.backbone, weights=self.weights, input_size=size, seed=seed
        ).eval()
        self.backbone_ = backbone
        self.weights_source_ = backbone.weights_source or f"random (seed {seed})"
        self.weights_fingerprint_ = state_dict_fingerprint(backbone)
        self.input_size_ = size
        self._intensity = intensity
        prefix = self.prefix or ""
        self.feature_names_out_ = [f"{prefix}deep_{k}" for k in range(backbone.feature_dim)]
        self._device_backbone = None
        _log.debug(
            "DeepFeatures: %s (%s), %d features, input %dx%d",
            backbone.name,
            self.weights_source_,
            backbone.feature_dim,
            *size,
        )
        return self

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_device_backbone", None)  # a device copy; rebuilt from backbone_ on demand
        return state

    # ---------------------------------------------------------------------------- transform

    def _settings(self, precision):
        """Everything besides the image, the mask and the weights that changes the output."""
        return {
            "version": _PREPROCESSING_VERSION,
            "backbone": self.backbone_.name,
            "crop": self.crop if self._crops() else None,
            "empty": (self.empty, self.center_fraction),
            "margin": self.margin,
            "input_size": self.input_size_,
            "normalize": self.normalize,
            "intensity_range": self._intensity,
            "precision": precision,
        }

    def _module_on(self, device):
        import torch

        module = self.backbone_
        if device != "cpu":
            cached = getattr(self, "_device_backbone", None)
            if cached is None or cached[0] != device or cached[1] is not self.backbone_:
                moved = copy.deepcopy(self.backbone_).to(device)
                if device.startswith("cuda"):
                    moved = moved.to(memory_format=torch.channels_last)
                self._device_backbone = (device, self.backbone_, moved)
            module = self._device_backbone[2]
        return module.eval()

    def _transform(self, X):
        import torch
        from tqdm.auto import tqdm

        device = resolve_device(self.device)
        amp_dtype = None
        if device.startswith("cuda"):
            amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        precision = "float32" if amp_dtype is None else str(amp_dtype).replace("torch.", "")
        settings = self._settings(precision)
        cache = resolve_cache(self.cache)
        row_ids = self._row_ids(X)
        n_rows, dim = len(X), len(self.feature_names_out_)
        features = np.empty((n_rows, dim), dtype=np.float32)
        pending = []  # (row position, cache key, preprocessed tensor)
        n_hits = 0
        start = time.perf_counter()

        def flush():
            if not pending:
                return
            module = self._module_on(device)
            batch = torch.stack([tensor for _, _, tensor in pending]).to(device)
            autocast = contextlib.nullcontext()
            if amp_dtype is not None:
                batch = batch.contiguous(memory_format=torch.channels_last)
                autocast = torch.autocast(device_type="cuda", dtype=amp_dtype)
            with torch.inference_mode(), autocast:
                out = module(batch)
            out = out.float().cpu().numpy()
            for (i, key, _), values in zip(pending, out):
                features[i] = values
                if cache is not None:
                    cache.save(_CACHE_NAMESPACE, key, features=values)
            pending.clear()

        with tqdm(
            total=n_rows,
            desc=f"deep features ({self.backbone_.name})",
            unit="image",
            disable=not self.verbose,
            leave=False,
        ) as bar:
            empty_rows = []
            for i in range(n_rows):
                image, mask = self._read_row(X, i, row_ids[i])
                if mask is not None and not mask.any():
                    empty_rows.append(row_ids[i])
                key = None
                if cache is not None:
                    key = cache.key(
                        _CACHE_NAMESPACE, image, mask, settings, self.weights_fingerprint_
                    )
                    hit = cache.load(_CACHE_NAMESPACE, key)
                    if hit is not None and hit.get("features", np.empty(0)).shape == (dim,):
                        features[i] = hit["features"]
                        n_hits += 1
                        bar.update()
                        continue
                pending.append((i, key, self._prepare(image, mask)))
                if len(pending) >= self.batch_size:
                    flush()
                bar.update()
            flush()
        if empty_rows:
            warnings.warn(
                f"DeepFeatures: {len(empty_rows)} of {n_rows} masks in column "
                f"{self.mask_col!r} are empty (first: row {empty_rows[0]!r}); their features "
                f"come from the {'whole image' if self.empty == 'whole' else 'image centre'} "
                "(empty=...).",
                UserWarning,
                stacklevel=3,
            )
        _log.info(
            "deep features (%s): %d rows in %.1f s (%d computed, %d from cache)",
            self.backbone_.name,
            n_rows,
            time.perf_counter() - start,
            n_rows - n_hits,
            n_hits,
        )
        return features

    def _read_row(self, X, i, row_id):
        image = read_cell(X, i, self.image_col, kind="image", finite=True)
        mask = None
        if self._crops():
            mask = read_cell(X, i, self.mask_col, kind="mask", shape=image.shape)
            if self.empty == "error" and not mask.any():
                raise CohortInputError(
                    "mask is empty, so there is no lesion to crop; expected at least one "
                    "foreground pixel (or set empty='whole' / 'center' to fall back)",
                    row=row_id,
                    column=self.mask_col,
                    path=_path_of(X[self.mask_col].iloc[i]),
                )
        return image, mask

    def _prepare(self, image, mask):
        """Image (and mask) -> normalised float32 tensor of shape (3, height, width)."""
        low, high = _intensity_bounds(image, self._intensity)
        if mask is not None:
            if mask.any():
                r0, r1, c0, c1 = _mask_box(mask, self.margin)
            else:
                r0, r1, c0, c1 = empty_mask_box(image.shape, self.empty, self.center_fraction)
            image = image[r0:r1, c0:c1]
        tensor = resize_image(to_unit_range(image, low, high), self.input_size_)
        tensor = match_channels(tensor, 3).contiguous()
        normalize_images(tensor[None], self.normalize)
        return tensor

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.weights is None and not isinstance(
            self.random_state, numbers.Integral
        )
        return tags


def _path_of(value):
    return value if isinstance(value, str | os.PathLike) else None
