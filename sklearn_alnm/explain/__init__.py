"""Visual explanations of image classifiers: Grad-CAM heat maps, overlays and figure panels.

:func:`grad_cam` computes the Grad-CAM map of a class for each image, on the network's input
grid, from a fitted :class:`~sklearn_alnm.models.ImageClassifier` or any torch module (every
backbone of :mod:`sklearn_alnm.nn`, ViT included, names its default layer in
``gradcam_layer``). :func:`overlay` blends a map over an image and :func:`plot_gradcam` draws a
panel of chosen cases with their predicted probabilities, as the study reports show them. A
video model (:class:`~sklearn_alnm.models.VideoClassifier`) gets one map per clip over time and
space, and :func:`key_frames` the frame where it concentrates. For a patient's bag of images
(the multi-task + multi-instance study), :func:`plot_bag_cam` draws each image with the
class activation map of the multi-task model's image-level head and the MIL model's
attention weight (:func:`bag_explanation` returns what it draws).
"""

from ._bags import bag_explanation, plot_bag_cam
from ._gradcam import grad_cam, key_frames, overlay, plot_gradcam

__all__ = ["bag_explanation", "grad_cam", "key_frames", "overlay", "plot_bag_cam", "plot_gradcam"]
