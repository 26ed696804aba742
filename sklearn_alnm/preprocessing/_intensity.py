"""Per-image intensity normalisation: z-score, min-max and histogram equalisation."""

import numpy as np
from sklearn.utils._param_validation import StrOptions

from ..io import read_cell
from ..utils._imaging import equalize_histogram
from ._base import BaseCohortTransformer, read_foreground


class IntensityNormalizer(BaseCohortTransformer):
    """Normalise the intensities of every image of a cohort, each image on its own statistics.

    Ultrasound and mammography intensities depend on the device, its gain and the export, so
    the studies normalise each image by its own statistics before it reaches a network or a
    radiomics extractor: a z-score (zero mean, unit variance), a min-max rescaling to
    ``[0, 1]`` or a histogram equalisation. The statistics may come from the whole image or
    from the lesion only (``mask_col``), and extreme values may be clipped at percentiles
    first.

    Parameters
    ----------
    image_col : str, default="image"
        Cohort column of the images (paths or arrays, see :func:`sklearn_alnm.io.read_image`).
    method : {"zscore", "minmax", "histeq"}, default="zscore"
        ``"zscore"``: ``(x - mean) / std``. ``"minmax"``: ``(x - min) / (max - min)``,
        clipped to ``[0, 1]``. ``"histeq"``: min-max to ``[0, 1]``, then each pixel is
        replaced by the fraction of (reference) pixels at or below its value on 256 levels,
        which spreads the histogram uniformly over ``(0, 1]``. RGB images use statistics over
        all channels for ``"zscore"`` and ``"minmax"`` and equalise each channel on its own.
    mask_col : str or None, default=None
        Column of the lesion masks (any non-zero label is foreground). When given, the
        statistics (mean, standard deviation, minimum, maximum, histogram, percentiles) come
        from the pixels inside the mask only, and the whole image is normalised with them;
        rows whose mask is empty or missing use the whole image. ``None``: the whole image.
    clip_percentiles : tuple of 2 float or None, default=None
        ``(low, high)`` in ``[0, 100]``: the image is first clipped to these percentiles of
        its reference pixels, e.g. ``(0.5, 99.5)`` to tame speckle and burnt-in annotations.
    output_col : str or None, default=None
        Column receiving the normalised images; ``None`` replaces ``image_col``.

    Attributes
    ----------
    n_features_in_ : int
        Number of columns of the cohort seen in :meth:`fit`.
    feature_names_in_ : ndarray of str
        The cohort's column names seen in :meth:`fit` (when all are strings).

    See Also
    --------
    ROICropper : Crop the lesion's rectangle before or after normalising.

    Notes
    -----
    The transformer is stateless: every image is normalised with its own statistics, so
    ``fit`` only validates the parameters and the columns. The output cells are float32
    arrays of the image's shape. An image whose reference pixels are all equal gives zeros
    (never NaN): z-scores become ``x - mean`` (zeros for a constant image), min-max and
    equalisation give zeros. Images holding NaN or infinite values are refused with an error
    naming the row, the column and the file.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn_alnm.preprocessing import IntensityNormalizer
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"image": [rng.normal(100, 20, (32, 32)), np.full((8, 8), 7.0)]})
    >>> out = IntensityNormalizer(method="zscore").fit_transform(X)
    >>> image = out["image"].iloc[0]
    >>> image.dtype, abs(float(image.mean())) < 1e-6, round(float(image.std()), 4)
    (dtype('float32'), True, 1.0)
    >>> float(np.abs(out["image"].iloc[1]).max())  # a constant image gives zeros
    0.0
    >>> out = IntensityNormalizer(method="minmax", output_col="image_01").fit_transform(X)
    >>> float(out["image_01"].iloc[0].min()), float(out["image_01"].iloc[0].max())
    (0.0, 1.0)
    """

    _parameter_constraints = {
        "image_col": [str],
        "method": [StrOptions({"zscore", "minmax", "histeq"})],
        "mask_col": [None, str],
        "clip_percentiles": [None, tuple, list],
        "output_col": [None, str],
    }

    def __init__(
        self,
        image_col="image",
        *,
        method="zscore",
        mask_col=None,
        clip_percentiles=None,
        output_col=None,
    ):
        self.image_col = image_col
        self.method = method
        self.mask_col = mask_col
        self.clip_percentiles = clip_percentiles
        self.output_col = output_col

    def _input_columns(self):
        return [self.image_col, self.mask_col]

    def _output_columns(self):
        return [self.image_col if self.output_col is None else self.output_col]

    def _check_settings(self):
        clip = self.clip_percentiles
        if clip is not None:
            clip = tuple(clip)
            if (
                len(clip) != 2
                or not all(
                    isinstance(v, int | float | np.number)
                    and not isinstance(v, bool)
                    and 0 <= v <= 100
                    for v in clip
                )
                or not clip[0] < clip[1]
            ):
                raise ValueError(
                    "clip_percentiles must be None or a pair (low, high) of percentiles with "
                    f"0 <= low < high <= 100; got {self.clip_percentiles!r}."
                )
        self._clip = None if clip is None else (float(clip[0]), float(clip[1]))
        if self.output_col is not None and self.output_col == self.mask_col:
            raise ValueError(
                f"output_col={self.output_col!r} is the mask column; the normalised images "
                "would overwrite the masks."
            )

    def _transform(self, X, row_ids):
        out = []
        for i, row_id in enumerate(row_ids):
            image = read_cell(X, i, self.image_col, kind="image", finite=True)
            inside = None
            if self.mask_col is not None:
                inside = read_foreground(
                    X, i, self.mask_col, image.shape[:2], row_id, allow_missing=True
                )
                if inside is not None and not inside.any():
                    inside = None
            out.append(normalize_intensity(image, self.method, inside, self._clip))
        return {self._output_columns()[0]: out}


def normalize_intensity(image, method, mask=None, clip_percentiles=None):
    """Normalise one image (see :class:`IntensityNormalizer`); returns float32.

    Parameters
    ----------
    image : ndarray of shape (H, W) or (H, W, C)
    method : {"zscore", "minmax", "histeq"}
    mask : ndarray of bool, shape (H, W), or None
        Pixels the statistics come from (``None``: all).
    clip_percentiles : tuple of 2 float or None

    Returns
    -------
    ndarray of the shape of ``image``, float32
    """
    data = np.asarray(image, dtype=np.float64)
    reference = data[mask] if mask is not None else data
    if clip_percentiles is not None:
        low, high = np.percentile(reference, clip_percentiles)
        data = np.clip(data, low, high)
        reference = data[mask] if mask is not None else data
    low, high = float(reference.min()), float(reference.max())
    if method == "zscore":
        mean = float(reference.mean())
        if high > low:
            return ((data - mean) / float(reference.std())).astype(np.float32)
        return (data - mean).astype(np.float32)
    if high <= low:
        return np.zeros(data.shape, dtype=np.float32)
    unit = np.clip((data - low) / (high - low), 0.0, 1.0).astype(np.float32)
    if method == "minmax":
        return unit
    if method == "histeq":
        return equalize_histogram(unit, mask)
    raise ValueError(f"unknown method {method!r}; expected 'zscore', 'minmax' or 'histeq'.")
