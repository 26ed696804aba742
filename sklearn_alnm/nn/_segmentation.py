"""The registry of segmentation networks: one name per network, its builder and its own
parameters (the segmenters of :mod:`sklearn_alnm.segmentation` choose their network here).

Every semantic-segmentation module returns logits ``(N, num_classes, H, W)`` on the input
grid; the detector returns torchvision's losses in training and detections in inference.
"""

from typing import NamedTuple

from ._deeplab import build_deeplabv3
from ._maskrcnn import build_maskrcnn
from ._unet import UNet
from ._unetpp import UNetPlusPlus


class SegmentationNetworkSpec(NamedTuple):
    """A segmentation network: its builder and the arguments an estimator passes through."""

    name: str
    builder: object
    params: tuple


_NETWORKS = {
    spec.name: spec
    for spec in (
        SegmentationNetworkSpec("unet", UNet, ("base_channels", "depth", "dropout", "upsample")),
        SegmentationNetworkSpec(
            "unet++", UNetPlusPlus, ("base_channels", "depth", "dropout", "deep_supervision")
        ),
        SegmentationNetworkSpec(
            "deeplabv3", build_deeplabv3, ("backbone", "weights", "weights_backbone")
        ),
        SegmentationNetworkSpec(
            "maskrcnn",
            build_maskrcnn,
            ("version", "weights", "weights_backbone", "min_size", "max_size"),
        ),
    )
}


def get_segmentation_network(name):
    """The :class:`SegmentationNetworkSpec` registered as ``name``.

    Parameters
    ----------
    name : {"unet", "unet++", "deeplabv3", "maskrcnn"}

    Returns
    -------
    SegmentationNetworkSpec

    Examples
    --------
    >>> from sklearn_alnm.nn import get_segmentation_network
    >>> get_segmentation_network("unet").params
    ('base_channels', 'depth', 'dropout', 'upsample')
    """
    try:
        return _NETWORKS[name]
    except KeyError:
        raise ValueError(
            f"unknown segmentation network {name!r}; expected one of {sorted(_NETWORKS)}."
        ) from None


def available_segmentation_networks():
    """Names of the registered segmentation networks."""
    return sorted(_NETWORKS)
