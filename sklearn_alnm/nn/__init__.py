"""Plain torch building blocks: the backbone registry and the modules built on it.

This subpackage knows nothing of scikit-learn. Every named architecture (ResNet, DenseNet, VGG,
Inception, GoogLeNet, SqueezeNet, ViT, EfficientNet, MobileNet, Swin, SegFormer's MiT encoders
(:class:`MiTNet`), a U-Net trunk (:class:`UNetTrunk`) and the ultrasound + H&E fusion study's
:class:`PLNet` and :class:`ULNet`) is one :class:`BackboneSpec` entry of a registry;
:func:`build_backbone` (or :class:`Backbone`, usable directly as a skorch ``module``) turns a
name into a network that returns its penultimate-layer embedding or the logits of a new head,
with any number of input channels and weights loaded strictly offline (:func:`resolve_weights`).

=========================  ============  ===========  =============================
name                       embedding     min. input   default Grad-CAM layer
=========================  ============  ===========  =============================
resnet18 / resnet34        512           32           ``layer4``
resnet50 / resnet101       2048          32           ``layer4``
densenet121                1024          32           ``features.norm5``
vgg16 / vgg19 (``_bn``)    4096          32           last ReLU of ``features``
inception_v3               2048          75           ``Mixed_7c``
googlenet                  1024          32           ``inception5b``
squeezenet1_1              512           32           ``features.12``
vit_b_16                   768           fixed (224)  ``encoder.layers.encoder_layer_11.ln_1``
efficientnet_b0            1280          32           ``features.8``
mobilenet_v3_large         1280          32           ``features.16``
swin_t                     768           32           ``permute`` (after the last norm)
mit_b0 / mit_b1 / mit_b2   256 / 512     32           ``stages.3`` (stride 32)
unet                       128           16           ``features`` (stride 4)
plnet                      256           16           ``features.block4``
ulnet                      2048          32           ``layer4``
=========================  ============  ===========  =============================

Segmentation networks return logits ``(N, num_classes, H, W)`` on the input grid:
:class:`UNet` and :class:`UNetPlusPlus` (any input size), torchvision's DeepLabV3
(:func:`build_deeplabv3`, ResNet50/101 or MobileNetV3 trunk) and, for lesion instances,
Mask R-CNN (:func:`build_maskrcnn`); pretrained weights are resolved offline as for backbones.
One network per module; the segmenters pick theirs by name from one registry
(:func:`get_segmentation_network`). :class:`MultimodalNet` fuses one backbone per modality
through one of five fusion heads (concatenation, learned weights, attention, voting, the
"multilayer" BatchNorm / FC / squeeze-and-excitation head). :class:`MILNet` classifies bags
of instances (feature vectors, or images through a backbone) with mean, max, attention, gated
attention or transformer pooling over padded, masked batches. :class:`MultiTaskSegNet` is the
multi-task lesion network: a backbone, a SAM-like :class:`MaskDecoder` (two-way attention
between a mask token and the image features) and segmentation, lesion-kind and image-level
ALN heads.
"""

from ._backbones import (
    Backbone,
    BackboneSpec,
    available_backbones,
    build_backbone,
    get_backbone_spec,
    register_backbone,
    resolve_weights,
    unregister_backbone,
)
from ._deeplab import DeepLabV3Net, build_deeplabv3
from ._dense_backbones import MIT_CHANNELS, MiTNet, UNetTrunk
from ._fusion import (
    FUSIONS,
    AttentionFusion,
    ConcatFusion,
    MultilayerFusion,
    MultimodalNet,
    SqueezeExcitation1d,
    VotingFusion,
    WeightedFusion,
)
from ._maskrcnn import MaskRCNNNet, build_maskrcnn
from ._mil import (
    POOLINGS,
    AttentionPooling,
    AttentionScore,
    MaxPooling,
    MeanPooling,
    MILNet,
    TransformerBlock,
    TransformerPooling,
    build_pooling,
)
from ._multitask import (
    LayerNorm2d,
    MaskDecoder,
    MultiScaleProjection,
    MultiTaskOutput,
    MultiTaskSegNet,
    TwoWayAttentionBlock,
    sincos_position_2d,
)
from ._plnet import PLNet, ULNet, plnet_spec
from ._segmentation import (
    SegmentationNetworkSpec,
    available_segmentation_networks,
    get_segmentation_network,
)
from ._unet import UNet
from ._unetpp import UNetPlusPlus
from ._video import (
    FRAME_ARCHS,
    VIDEO_3D_ARCHS,
    FrameVideoNet,
    TemporalInterlace,
    TemporalShift,
    Video3DNet,
    build_video_net,
    interpolated_shift,
    resolve_video_weights,
    temporal_shift,
)
from ._weights import (
    WeightsNotAvailableError,
    adapt_conv_weight,
    hub_checkpoint_path,
    read_state_dict,
    state_dict_fingerprint,
)

__all__ = [
    "MIT_CHANNELS",
    "MiTNet",
    "UNetTrunk",
    "LayerNorm2d",
    "MaskDecoder",
    "MultiScaleProjection",
    "MultiTaskOutput",
    "MultiTaskSegNet",
    "TwoWayAttentionBlock",
    "sincos_position_2d",
    "POOLINGS",
    "AttentionPooling",
    "AttentionScore",
    "MaxPooling",
    "MeanPooling",
    "MILNet",
    "TransformerBlock",
    "TransformerPooling",
    "build_pooling",
    "FUSIONS",
    "AttentionFusion",
    "ConcatFusion",
    "MultilayerFusion",
    "MultimodalNet",
    "SqueezeExcitation1d",
    "VotingFusion",
    "WeightedFusion",
    "FRAME_ARCHS",
    "FrameVideoNet",
    "TemporalInterlace",
    "TemporalShift",
    "VIDEO_3D_ARCHS",
    "Video3DNet",
    "build_video_net",
    "interpolated_shift",
    "resolve_video_weights",
    "temporal_shift",
    "Backbone",
    "BackboneSpec",
    "DeepLabV3Net",
    "MaskRCNNNet",
    "PLNet",
    "SegmentationNetworkSpec",
    "ULNet",
    "UNet",
    "UNetPlusPlus",
    "WeightsNotAvailableError",
    "adapt_conv_weight",
    "available_backbones",
    "available_segmentation_networks",
    "build_backbone",
    "build_deeplabv3",
    "build_maskrcnn",
    "get_backbone_spec",
    "get_segmentation_network",
    "hub_checkpoint_path",
    "plnet_spec",
    "read_state_dict",
    "register_backbone",
    "resolve_weights",
    "state_dict_fingerprint",
    "unregister_backbone",
]
