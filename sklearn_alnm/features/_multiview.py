"""Several views (mammography CC and MLO) of one patient as one feature table."""

from collections.abc import Sequence
from typing import Any

from sklearn.pipeline import FeatureUnion

from ._deep import DeepFeatures
from ._radiomics import RadiomicsFeatures


def make_multiview_features(
    views: Sequence[str] = ("cc", "mlo"),
    *,
    radiomics: bool | dict[str, Any] = True,
    deep: bool | dict[str, Any] = True,
    image_col: str = "{view}_image",
    mask_col: str | None = "{view}_mask",
) -> FeatureUnion:
    """Radiomics and/or deep features of every view, side by side, one row per patient.

    The mammography study describes each patient by the radiomics and deep features of both
    views (CC and MLO): 2 x 863 radiomics + 2 x 512 ResNet18 features. Each view reads its
    own image and mask columns (``cc_image``, ``cc_mask``, ...) and its features are prefixed
    by the view (``cc_original_shape2D_Elongation``, ``mlo_deep_17``), so the union keeps
    unique, readable names.

    Parameters
    ----------
    views : sequence of str, default=("cc", "mlo")
        View names; they fill ``{view}`` in the column patterns and prefix the features.
    radiomics : bool or dict, default=True
        Include :class:`RadiomicsFeatures` per view; a dict gives its parameters
        (e.g. ``{"n_jobs": 2, "cache": "cache/", "image_types": ["Original", "Wavelet"]}``).
    deep : bool or dict, default=True
        Include :class:`DeepFeatures` per view; a dict gives its parameters
        (e.g. ``{"backbone": "resnet18", "weights": "DEFAULT"}``). Deep features are computed on
        the mask's bounding box (``crop="mask_bbox"``) unless the dict says otherwise.
    image_col, mask_col : str, default="{view}_image", "{view}_mask"
        Column-name patterns.

    Returns
    -------
    sklearn.pipeline.FeatureUnion
        Unfitted; transformer names are ``"{view}_radiomics"`` / ``"{view}_deep"``.

    Examples
    --------
    >>> from sklearn_alnm.features import make_multiview_features
    >>> union = make_multiview_features(deep=False, radiomics={"feature_classes": ["shape2D"]})
    >>> [name for name, _ in union.transformer_list]
    ['cc_radiomics', 'mlo_radiomics']
    """
    views = [views] if isinstance(views, str) else list(views)
    if not views:
        raise ValueError("views must name at least one view, e.g. ('cc', 'mlo').")
    if not (radiomics or deep):
        raise ValueError("At least one of radiomics and deep must be enabled.")
    parts = []
    for view in views:
        image, mask = image_col.format(view=view), mask_col.format(view=view)
        if radiomics:
            params = dict(radiomics) if isinstance(radiomics, dict) else {}
            params.setdefault("prefix", f"{view}_")
            parts.append((f"{view}_radiomics", RadiomicsFeatures(image, mask, **params)))
        if deep:
            params = {"crop": "mask_bbox", **(deep if isinstance(deep, dict) else {})}
            params.setdefault("prefix", f"{view}_")
            parts.append((f"{view}_deep", DeepFeatures(image, mask, **params)))
    return FeatureUnion(parts, verbose_feature_names_out=False)
