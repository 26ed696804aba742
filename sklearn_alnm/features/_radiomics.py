"""Handcrafted radiomics features of a lesion: pyradiomics on every (image, mask) row of a cohort.

:class:`RadiomicsFeatures` runs pyradiomics' ``RadiomicsFeatureExtractor`` on the image and
lesion mask of each patient and returns one row of named features per patient. Rows are
processed in parallel through joblib (each task reads its own cells, looks its result up in the
content cache and extracts only on a miss), so the same code runs on a laptop, on all cores of
a workstation or, with ``joblib.parallel_config(backend="dask")``, on a cluster.

How 2-D images are handed to pyradiomics
----------------------------------------
Cohort images are 2-D. With ``force2d=True`` (the default) each image becomes a 2-D SimpleITK
image (spacing given in SimpleITK's ``(x, y)`` = ``(column, row)`` order) and pyradiomics' own
``force2D`` setting stays off. This is what pyradiomics computes when it reads a PNG itself:
in-plane texture matrices, a 2-D stationary wavelet (``wavelet-LH``, ``-HL``, ``-HH``, ``-LL``)
and a 2-D Laplacian of Gaussian, bit for bit the same values as for a one-slice volume with
``force2D: true`` (checked in the tests), except that the LoG filter, which pyradiomics refuses
on volumes thinner than 4 voxels, is available. Passing a 2-D image *with* pyradiomics'
``force2D`` on would be wrong: its ``force2Ddimension=0`` then removes an in-plane axis, so the
texture matrices and the wavelet become one-dimensional.

With ``force2d=False`` each image is a volume of one slice (z spacing 1) extracted in 3-D,
which reproduces pipelines that exported each ultrasound image as a single-slice NRRD / NIfTI
file and ran pyradiomics with its 3-D defaults (eight 3-D wavelet decompositions, the 3-D
``shape`` class on the one-voxel-thick slab, no LoG).
"""

import copy
import functools
import json
import math
import numbers
import os
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
from joblib import Parallel, delayed
from sklearn.utils._param_validation import Interval, StrOptions

from .._logging import get_logger
from ..io import resolve_id_column
from ..utils import CohortInputError, FeatureCache, resolve_cache
from ._base import BaseCohortFeatures
from ._radiomics_worker import (
    _get_extractor,
    _process_row,
    _radiomics,
    _radiomics_verbosity,
    _RowConfig,
    _run_pyradiomics,
    to_gray,
)

#: joblib backends of a cluster (see :func:`sklearn_alnm.utils.parallel_backend`).
_CLUSTER_BACKENDS = ("DaskDistributedBackend", "RayBackend")
_log = get_logger(__name__)

__all__ = ["RadiomicsFeatures", "to_gray"]  # to_gray: the conversion applied to each image


_PARAM_SECTIONS = ("setting", "imageType", "featureClass", "voxelSetting")
_PARAM_SUFFIXES = (".yaml", ".yml", ".json")

# First token of pyradiomics' feature names ("<imageType>_<class>_<feature>") per image type.
_IMAGE_TYPE_PREFIXES = {
    "Original": ("original",),
    "Wavelet": ("wavelet",),
    "LoG": ("log-sigma-",),
    "Square": ("square",),
    "SquareRoot": ("squareroot",),
    "Logarithm": ("logarithm",),
    "Exponential": ("exponential",),
    "Gradient": ("gradient",),
    "LBP2D": ("lbp-2D",),
    "LBP3D": ("lbp-3D-",),
}
_SHAPE_CLASSES = ("shape", "shape2D")


# --------------------------------------------------------------------------------------------
# pyradiomics plumbing of fit (the per-row work of transform is in ._radiomics_worker)
# --------------------------------------------------------------------------------------------


def _feature_classes():
    """Mapping class name -> pyradiomics feature class, in pyradiomics' order."""
    return _radiomics().getFeatureClasses()


def _image_types():
    return sorted(_radiomics().getImageTypes())


def _library_versions():
    import pywt
    import SimpleITK as sitk

    return {
        "pyradiomics": _radiomics().__version__,
        "pywavelets": pywt.__version__,
        "simpleitk": sitk.Version.VersionString(),
    }


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not a valid pyradiomics parameter value")


def _to_json(params, *, sort_keys=False):
    return json.dumps(params, sort_keys=sort_keys, default=_json_default)


# --------------------------------------------------------------------------------------------
# Parameter resolution (in fit)
# --------------------------------------------------------------------------------------------


def _load_params(params):
    """Return the pyradiomics parameter dictionary given as a dict or a YAML/JSON file."""
    if params is None:
        data, source = {}, "params"
    elif isinstance(params, dict):
        data = copy.deepcopy(params)
        source = "params"
    else:
        path = Path(params)
        if not path.is_file():
            raise FileNotFoundError(
                f"params file {os.fspath(path)!r} does not exist; expected a pyradiomics "
                "parameter file (.yaml, .yml or .json) or a dict"
            )
        suffix = path.suffix.lower()
        if suffix not in _PARAM_SUFFIXES:
            raise ValueError(
                f"params file {os.fspath(path)!r} has extension {suffix!r}; expected a "
                "pyradiomics parameter file ending in .yaml, .yml or .json"
            )
        try:
            with open(path, encoding="utf-8") as handle:
                if suffix == ".json":
                    data = json.load(handle)
                else:
                    from pykwalify.compat import yml  # pyradiomics' own YAML reader

                    data = yml.load(handle)
        except Exception as exc:
            raise ValueError(
                f"could not parse params file {os.fspath(path)!r}: {type(exc).__name__}: {exc}"
            ) from exc
        data = {} if data is None else data
        source = f"params file {os.fspath(path)!r}"
    if not isinstance(data, dict):
        raise TypeError(
            f"{source} must hold a mapping with the sections {list(_PARAM_SECTIONS[:3])}; "
            f"got {type(data).__name__}"
        )
    unknown = [k for k in data if k not in _PARAM_SECTIONS]
    if unknown:
        raise ValueError(
            f"{source} has unknown section(s) {unknown}; expected pyradiomics' sections "
            f"{list(_PARAM_SECTIONS)}"
        )
    for section in _PARAM_SECTIONS:
        value = data.get(section)
        if value is None:
            data[section] = {}
        elif not isinstance(value, dict):
            raise TypeError(
                f"section {section!r} of {source} must be a mapping, got {type(value).__name__}"
            )
    return data


def _check_image_types(value, source):
    valid = _image_types()
    if isinstance(value, str):
        raise TypeError(f"{source} must be a dict or a list of image type names, not a string")
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list | tuple):
        items = [(name, {}) for name in value]
    else:
        raise TypeError(
            f"{source} must be a dict {{name: settings}} or a list of names; got "
            f"{type(value).__name__}"
        )
    resolved = {}
    for name, custom in items:
        if name not in valid:
            raise ValueError(f"unknown image type {name!r} in {source}; valid image types: {valid}")
        if custom is None:
            custom = {}
        if not isinstance(custom, dict):
            raise TypeError(
                f"settings of image type {name!r} in {source} must be a dict, got "
                f"{type(custom).__name__}"
            )
        resolved[name] = dict(custom)
    if not resolved:
        raise ValueError(f"{source} enables no image type; enable at least 'Original'")
    return resolved


def _check_feature_classes(value, source):
    classes = _feature_classes()
    valid = list(classes)
    if isinstance(value, str):
        raise TypeError(f"{source} must be a dict or a list of feature class names, not a string")
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list | tuple):
        items = [(name, []) for name in value]
    else:
        raise TypeError(
            f"{source} must be a dict {{class: feature names or None}} or a list of class "
            f"names; got {type(value).__name__}"
        )
    resolved = {}
    for name, features in items:
        if name not in classes:
            raise ValueError(
                f"unknown feature class {name!r} in {source}; valid feature classes: {valid}"
            )
        if features is None:
            features = []
        if isinstance(features, str) or not isinstance(features, list | tuple):
            raise TypeError(
                f"features of class {name!r} in {source} must be a list of feature names (an "
                f"empty list or None for all), got {features!r}"
            )
        known = classes[name].getFeatureNames()
        unknown = [f for f in features if f not in known]
        if unknown:
            raise ValueError(
                f"unknown feature(s) {unknown} of class {name!r} in {source}; valid features: "
                f"{sorted(known)}"
            )
        resolved[name] = list(features)
    if not resolved:
        raise ValueError(f"{source} enables no feature class")
    return resolved


def _default_feature_classes(volume):
    """pyradiomics' default classes (all but shape2D), with shape2D instead of shape in 2-D."""
    names = [n for n in _feature_classes() if n != "shape2D"]
    if not volume:
        names = [n if n != "shape" else "shape2D" for n in names]
    return {name: [] for name in names}


def _synthetic_case(params):
    """A textured disk large enough for every LoG sigma, on the settings' target spacing."""
    setting = params["setting"]
    spacing = 1.0
    resampled = setting.get("resampledPixelSpacing")
    if resampled and all(s > 0 for s in resampled[:2]):
        spacing = float(min(resampled[:2]))
    sigmas = [float(s) for s in setting.get("sigma") or []]
    for custom in params["imageType"].values():
        sigmas += [float(s) for s in custom.get("sigma") or []]
    size = max(64, math.ceil(max(sigmas, default=0.0) / spacing) + 8)
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[:size, :size]
    texture = 0.5 + 0.25 * np.sin(cols / 3.0) * np.cos(rows / 5.0) + 0.2 * rng.random((size, size))
    low, high = 0.0, 255.0
    reseg = setting.get("resegmentRange")
    if reseg and setting.get("resegmentMode", "absolute") == "absolute":
        low = float(reseg[0])
        high = float(reseg[1]) if len(reseg) > 1 else low + 255.0
    image = np.round(low + (high - low) * np.clip(texture, 0.0, 1.0))
    centre = (size - 1) / 2.0
    disk = (rows - centre) ** 2 + (cols - centre) ** 2 <= (0.35 * size) ** 2
    mask = (disk * int(setting["label"])).astype(np.uint8)
    return image, mask, (spacing, spacing), size


@functools.lru_cache(maxsize=32)
def _learn_feature_names(params_json, volume):
    """Feature names (in pyradiomics' order) for these settings, from a synthetic disk."""
    params = json.loads(params_json)
    image, mask, spacing, size = _synthetic_case(params)
    try:
        names, _ = _run_pyradiomics(image, mask, spacing, params_json, volume)
    except Exception as exc:
        raise ValueError(
            "could not determine the feature names: pyradiomics failed with these settings on "
            f"a synthetic {size}x{size} textured disk: {type(exc).__name__}: {exc}"
        ) from exc
    return tuple(names)


def _check_image_types_produced(names, params):
    texture_classes = [c for c in params["featureClass"] if c not in _SHAPE_CLASSES]
    if not texture_classes:
        return
    first_tokens = [n.split("_", 1)[0] for n in names if n.split("_")[1] not in _SHAPE_CLASSES]
    for image_type in params["imageType"]:
        prefixes = _IMAGE_TYPE_PREFIXES.get(image_type, (image_type.lower(),))
        found = any(
            token == p or (p.endswith("-") or p == "wavelet") and token.startswith(p)
            for token in first_tokens
            for p in prefixes
        )
        if not found:
            hint = ""
            if image_type in ("LBP2D", "LBP3D"):
                hint = " (pyradiomics' LBP filters need scikit-image installed)"
            raise ValueError(
                f"image type {image_type!r} produced no features with these settings{hint}; "
                "remove it or fix its settings"
            )


# --------------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------------


class RadiomicsFeatures(BaseCohortFeatures):
    """Radiomics features of each patient's lesion, computed by pyradiomics.

    For every row of a cohort the image and its lesion mask are read, the image is converted
    to grayscale, and pyradiomics' ``RadiomicsFeatureExtractor`` computes the enabled feature
    classes on the enabled image types (original and filtered images). Rows run in parallel
    with joblib; results are cached by content, so refitting a pipeline, or every candidate of
    a ``GridSearchCV``, reuses them.

    Parameters
    ----------
    image_col : str, default="image"
        Cohort column holding the images (paths or arrays, see :func:`sklearn_alnm.io.read_image`).
        RGB images whose channels differ are converted to gray as
        ``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601); gray screenshots with three equal
        channels are read as gray directly.
    mask_col : str, default="mask"
        Cohort column holding the lesion masks or label maps, on the pixel grid of the images.
        The image's pixel spacing applies to both.
    params : str, os.PathLike, dict or None, default=None
        pyradiomics parameters: a YAML / JSON parameter file or a dict with the same schema
        (sections ``setting``, ``imageType``, ``featureClass``; ``voxelSetting`` is ignored,
        extraction is segment-based). ``None`` uses pyradiomics' default settings (e.g.
        ``binWidth=25``), the ``Original`` image only and the default feature classes (see
        ``feature_classes``).
    image_types : dict, list of str or None, default=None
        Replaces the ``imageType`` section: ``{"Original": {}, "Wavelet": {}, "LoG": {"sigma":
        [1.0, 3.0]}}`` (each value holds settings for that image type only), or a list of
        names (no custom settings). Valid names: ``Original``, ``Wavelet``, ``LoG``,
        ``Square``, ``SquareRoot``, ``Logarithm``, ``Exponential``, ``Gradient``, ``LBP2D``,
        ``LBP3D``.
    feature_classes : dict, list of str or None, default=None
        Replaces the ``featureClass`` section: ``{"glcm": ["Contrast", "Correlation"],
        "firstorder": None}`` (``None`` or ``[]``: every feature of the class) or a list of
        class names. When neither this nor ``params`` sets the classes, pyradiomics' defaults
        are used (``firstorder``, ``glcm``, ``gldm``, ``glrlm``, ``glszm``, ``ngtdm``) plus the
        lesion shape: ``shape2D`` for 2-D extraction (pyradiomics leaves it off, though lesion
        shape is what published radiomics signatures rely on most), the 3-D ``shape`` class
        when ``force2d=False``.
    label : int, default=1
        Mask value of the lesion (pyradiomics' ``label`` setting), so label maps with several
        structures work. A ``label`` in ``params`` must agree with it.
    force2d : bool, default=True
        Extract in 2-D: the image is handed to pyradiomics as a 2-D image, giving in-plane
        texture matrices, a 2-D wavelet, a 2-D LoG and the ``shape2D`` class (see Notes).
        ``False`` hands it over as a volume of one slice extracted in 3-D. The ``force2D`` and
        ``force2Ddimension`` settings of ``params`` are replaced accordingly.
    n_jobs : int or None, default=None
        Number of rows processed in parallel by joblib (``None``: 1 unless a
        ``joblib.parallel_config`` says otherwise; ``-1``: all cores). Each task reads its own
        image and mask, so only file paths (or the arrays of in-memory cohorts) travel.
    on_error : {"raise", "nan"}, default="raise"
        What to do with a row whose image or mask cannot be read or whose extraction fails
        (corrupt file, empty mask, mask on another grid, ROI too small, ...): raise a
        :class:`~sklearn_alnm.utils.CohortInputError` naming the row, the column, the file
        and the reason, or log that message as a warning and give the row NaN features.
    cache : None, str, os.PathLike, joblib.Memory or FeatureCache, default=None
        Where to cache the features of each row (see
        :class:`~sklearn_alnm.utils.FeatureCache`). The key is the content of the decoded
        grayscale image and mask, the spacing, every pyradiomics setting and the versions of
        pyradiomics, PyWavelets and SimpleITK, never a path, so moved or re-exported files
        still hit. For cells holding files, a small index also maps each file's identity
        (path, size, modification and change times, inode) to that key, so a re-run on
        unchanged files skips even decoding them; any write to a file changes its identity,
        and files written less than a second before are not indexed. Failed rows are not
        cached.
    prefix : str or None, default=None
        Prepended to every output column name (e.g. ``"cc_"`` for the craniocaudal view).
    verbose : int, default=0
        Show a progress bar (tqdm) when > 0. Progress and failures are also logged to the
        ``sklearn_alnm`` logger.

    Attributes
    ----------
    feature_names_out_ : list of str
        Output column names: ``prefix`` + pyradiomics' names
        (``"<imageType>_<class>_<feature>"``, e.g. ``"original_shape2D_Elongation"``,
        ``"wavelet-LH_glcm_Contrast"``, ``"log-sigma-1-0-mm-3D_firstorder_Mean"``; the
        ``diagnostics_*`` entries are dropped).
    settings_ : dict
        The pyradiomics parameter dictionary used (sections ``setting``, ``imageType``,
        ``featureClass``), after merging ``params`` with the estimator's parameters.
    library_versions_ : dict
        Versions of pyradiomics, PyWavelets and SimpleITK at fit time.

    See Also
    --------
    sklearn_alnm.utils.FeatureCache : The content-addressed cache.
    sklearn_alnm.io.read_image_mask : How images and masks are read.

    Notes
    -----
    The names are learned in ``fit`` by extracting once, with the same settings and
    dimensionality, from a synthetic textured disk, so they depend only on the settings,
    never on the data (a failing first row does not matter). ``transform`` then produces
    exactly those columns; a row whose extraction yields another set (e.g. a LoG sigma that
    pyradiomics skips because the image is too small) is an error, or NaN with
    ``on_error="nan"``.

    Values are those of pyradiomics run on the same image and mask: images are handed over as
    float64, which gives the same values as pyradiomics reading integer-valued files (PNG,
    DICOM) itself. With ``force2d=True`` the extraction equals pyradiomics' 2-D extraction of
    a one-slice volume with ``force2D: true`` for every image type they share; pyradiomics'
    ``force2D`` setting itself is left off, because on a 2-D image its
    ``force2Ddimension=0`` would drop an in-plane axis. Diagnostics (``additionalInfo``) are
    switched off since they are not returned.

    Worker processes limit SimpleITK's threads to ``cores // n_jobs`` so parallel rows do not
    oversubscribe the CPU (joblib does the same for BLAS), to one thread per task on a Dask or
    Ray cluster (whose workers run one task per thread or per CPU), and take over the parent's
    pyradiomics verbosity: pyradiomics prints its warnings (e.g. "GLCM is symmetrical, ...")
    to stderr; ``radiomics.setVerbosity(logging.ERROR)`` silences them in every worker.

    References
    ----------
    .. [1] J. J. M. van Griethuysen, A. Fedorov, C. Parmar, A. Hosny, N. Aucoin, V. Narayan,
       R. G. H. Beets-Tan, J.-C. Fillion-Robin, S. Pieper, H. J. W. L. Aerts, "Computational
       Radiomics System to Decode the Radiographic Phenotype", Cancer Research 77(21),
       e104-e107 (2017). https://doi.org/10.1158/0008-5472.CAN-17-0339

    Examples
    --------
    A disk and an ellipse twice as long as wide:

    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn_alnm.features._radiomics import RadiomicsFeatures
    >>> rows, cols = np.mgrid[:32, :32]
    >>> image = (100 + 20 * np.sin(cols / 2.0)).astype(np.float32)
    >>> masks = [((rows - 16) ** 2 + (cols - 16) ** 2 <= 100).astype(np.uint8),
    ...          (((rows - 16) / 6) ** 2 + ((cols - 16) / 12) ** 2 <= 1).astype(np.uint8)]
    >>> X = pd.DataFrame({"patient_id": ["P1", "P2"], "image": [image, image],
    ...                   "mask": masks})
    >>> radiomics = RadiomicsFeatures(feature_classes=["shape2D", "firstorder"])
    >>> table = radiomics.set_output(transform="pandas").fit_transform(X)
    >>> table.shape
    (2, 27)
    >>> table["original_shape2D_Elongation"].round(2).tolist()
    [1.0, 0.48]
    """

    _parameter_constraints = {
        "image_col": [str],
        "mask_col": [str],
        "params": [None, str, os.PathLike, dict],
        "image_types": [None, dict, list, tuple],
        "feature_classes": [None, dict, list, tuple],
        "label": [Interval(numbers.Integral, 1, 255, closed="both")],
        "force2d": ["boolean"],
        "n_jobs": [numbers.Integral, None],
        "on_error": [StrOptions({"raise", "nan"})],
        "cache": [None, str, os.PathLike, joblib.Memory, FeatureCache],
        "prefix": [None, str],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        image_col="image",
        mask_col="mask",
        *,
        params=None,
        image_types=None,
        feature_classes=None,
        label=1,
        force2d=True,
        n_jobs=None,
        on_error="raise",
        cache=None,
        prefix=None,
        verbose=0,
    ):
        self.image_col = image_col
        self.mask_col = mask_col
        self.params = params
        self.image_types = image_types
        self.feature_classes = feature_classes
        self.label = label
        self.force2d = force2d
        self.n_jobs = n_jobs
        self.on_error = on_error
        self.cache = cache
        self.prefix = prefix
        self.verbose = verbose

    def _input_columns(self):
        return [self.image_col, self.mask_col]

    # ---------------------------------------------------------------------------- settings

    def _resolve_settings(self):
        """Merge ``params`` with the estimator's parameters into one validated dictionary."""
        volume = not self.force2d
        loaded = _load_params(self.params)
        setting = dict(loaded["setting"])
        if "label" in setting and setting["label"] != self.label:
            raise ValueError(
                f"params sets label={setting['label']!r} but the estimator has "
                f"label={self.label!r}; set label={setting['label']!r} on the estimator (the "
                "estimator's parameter is the one used, and tuned by GridSearchCV)"
            )
        setting["label"] = int(self.label)
        setting["force2D"] = False  # see the module docstring: 2-D images need it off
        setting.pop("force2Ddimension", None)
        setting["additionalInfo"] = False  # diagnostics are dropped anyway
        resampled = setting.get("resampledPixelSpacing")
        n_dims = 3 if volume else 2
        if resampled is not None and len(resampled) != n_dims:
            raise ValueError(
                f"resampledPixelSpacing must have {n_dims} values (pyradiomics order "
                f"{'(x, y, z)' if volume else '(x, y)'}) with force2d={self.force2d}; got "
                f"{resampled!r}"
            )

        if self.image_types is not None:
            image_types = _check_image_types(self.image_types, "image_types")
        elif loaded["imageType"]:
            image_types = _check_image_types(loaded["imageType"], "the imageType section of params")
        else:
            image_types = {"Original": {}}
        if self.feature_classes is not None:
            feature_classes = _check_feature_classes(self.feature_classes, "feature_classes")
        elif loaded["featureClass"]:
            feature_classes = _check_feature_classes(
                loaded["featureClass"], "the featureClass section of params"
            )
        else:
            feature_classes = _default_feature_classes(volume)

        mode = "with force2d=False (one-slice volume)" if volume else "on 2-D images"
        if not volume and "shape" in feature_classes:
            raise ValueError(
                "the 3-D 'shape' feature class is undefined on 2-D images; use 'shape2D' "
                "(or force2d=False to extract from a one-slice volume)"
            )
        if volume and "shape2D" in feature_classes:
            raise ValueError(
                "the 'shape2D' feature class needs 2-D extraction (force2d=True); use 'shape' "
                "with force2d=False"
            )
        if not volume and "LBP3D" in image_types:
            raise ValueError(f"image type 'LBP3D' is undefined {mode}; use 'LBP2D'")
        if "LoG" in image_types:
            if volume:
                raise ValueError(
                    f"image type 'LoG' is unavailable {mode}: pyradiomics' LoG filter needs at "
                    "least 4 voxels along every axis; use force2d=True for a 2-D LoG"
                )
            if not (image_types["LoG"].get("sigma") or setting.get("sigma")):
                raise ValueError(
                    "image type 'LoG' needs sigma values (mm), e.g. image_types={'Original': {}, "
                    "'LoG': {'sigma': [1.0, 3.0]}}"
                )
        params = {
            "setting": setting,
            "imageType": image_types,
            "featureClass": feature_classes,
        }
        try:
            params_json = _to_json(params)
        except TypeError as exc:
            raise TypeError(f"invalid pyradiomics parameter value: {exc}") from None
        try:
            _get_extractor(params_json)  # pyradiomics validates the settings (pykwalify schema)
        except Exception as exc:
            raise ValueError(f"invalid pyradiomics settings: {type(exc).__name__}: {exc}") from exc
        return json.loads(params_json), params_json

    def _fit(self, X):
        resolve_cache(self.cache)  # type errors early
        settings, params_json = self._resolve_settings()
        volume = not self.force2d
        names = _learn_feature_names(params_json, volume)
        _check_image_types_produced(names, settings)
        self.settings_ = settings
        self.library_versions_ = _library_versions()
        self._pyradiomics_names = list(names)
        prefix = self.prefix or ""
        self.feature_names_out_ = [prefix + name for name in names]
        _log.debug(
            "RadiomicsFeatures: %d features from image types %s and classes %s",
            len(names),
            list(settings["imageType"]),
            list(settings["featureClass"]),
        )
        return self

    # ---------------------------------------------------------------------------- transform

    def _row_config(self):
        params_json = _to_json(self.settings_)
        key_settings = _to_json(
            {"params": self.settings_, "volume": not self.force2d, **_library_versions()},
            sort_keys=True,
        )
        itk_threads = None
        backend, _ = joblib.parallel.get_active_backend()
        n_workers = joblib.effective_n_jobs(self.n_jobs)
        backend_name = type(backend).__name__
        if n_workers > 1 and backend_name in ("LokyBackend", "MultiprocessingBackend"):
            itk_threads = max(1, (os.cpu_count() or 1) // n_workers)
        elif backend_name in _CLUSTER_BACKENDS:
            # a cluster runs one task per worker thread (Dask) or per CPU it grants (Ray), on
            # workers sized to their cores: one SimpleITK thread per task
            itk_threads = 1
        return _RowConfig(
            image_col=self.image_col,
            mask_col=self.mask_col,
            label=int(self.label),
            params_json=params_json,
            key_settings=key_settings,
            volume=not self.force2d,
            names=tuple(self._pyradiomics_names),
            cache=resolve_cache(self.cache),
            on_error=self.on_error,
            parent_pid=os.getpid(),
            itk_threads=itk_threads,
            radiomics_verbosity=_radiomics_verbosity(),
        )

    def _transform(self, X):
        from tqdm.auto import tqdm

        config = self._row_config()
        id_col = resolve_id_column(X, "auto")
        columns = list(dict.fromkeys(c for c in (id_col, self.image_col, self.mask_col) if c))
        cells = X[columns]
        n_rows = len(cells)
        features = np.full((n_rows, len(config.names)), np.nan, dtype=np.float64)
        tasks = (delayed(_process_row)(cells.iloc[i : i + 1], config) for i in range(n_rows))
        start = time.perf_counter()
        n_computed = n_failed = 0
        first_error = None
        # rows stream through the workers (results in order, as they come) where the backend
        # can return a generator; Ray's joblib backend cannot, and returns the list at the end
        backend, _ = joblib.parallel.get_active_backend()
        streams = getattr(backend, "supports_return_generator", True) or n_rows == 0
        results = Parallel(n_jobs=self.n_jobs, return_as="generator" if streams else "list")(tasks)
        with tqdm(
            total=n_rows, desc="radiomics", unit="row", disable=not self.verbose, leave=False
        ) as bar:
            for i, (values, error, computed) in enumerate(results):
                if error is not None:
                    n_failed += 1
                    first_error = first_error or error
                    _log.warning("radiomics features set to NaN: %s", error)
                else:
                    features[i] = values
                    n_computed += bool(computed)
                bar.update()
        _log.info(
            "radiomics: %d rows in %.1f s (%d extracted, %d from cache, %d failed)",
            n_rows,
            time.perf_counter() - start,
            n_computed,
            n_rows - n_computed - n_failed,
            n_failed,
        )
        if n_failed and n_failed == n_rows:
            raise CohortInputError(
                f"radiomics failed for every one of the {n_rows} rows (on_error='nan' would "
                f"leave only NaN features); the first failure: {first_error}"
            )
        if n_failed:
            # Seen without any logging set up: the count, and the first reason.
            warnings.warn(
                f"RadiomicsFeatures: {n_failed} of {n_rows} rows failed and have NaN features "
                f"(on_error='nan'); first: {first_error}",
                UserWarning,
                stacklevel=3,
            )
        return features
