"""Key-frame selection: a video column -> an image column, for static models on the same cohort."""

import numbers

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ..io import read_cell
from ._base import BaseCohortTransformer


class FrameSelector(BaseCohortTransformer):
    """Write one key frame of every clip as an image column (a video model's static comparator).

    The dynamic-ultrasound study compares its video networks with static-image models (ResNet50,
    InceptionV3, VGG19) on a key frame of the same clip. ``FrameSelector`` writes that frame, so
    an :class:`~sklearn_alnm.models.ImageClassifier` (or any image estimator) runs on the same
    cohort as the :class:`~sklearn_alnm.models.VideoClassifier`.

    Parameters
    ----------
    video_col : str, default="video"
        Cohort column of the clips (see :func:`sklearn_alnm.io.read_video`).
    method : {"middle", "max_variance", "index"}, default="middle"
        ``"middle"``: the frame in the middle of the clip; ``"max_variance"``: the frame of
        largest intensity variance (the most structured view, e.g. the probe on the lesion
        rather than in the air); ``"index"``: frame ``index``.
    index : int or None, default=None
        With ``method="index"``: the frame (negative values count from the end). A clip
        without that frame is an error naming the row.
    output_col : str, default="key_frame"
        Column that receives the frames (float32 ``(H, W)`` or ``(H, W, 3)``, intensities as
        decoded).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_alnm.preprocessing import FrameSelector
    >>> clip = np.stack([np.full((4, 4), v, np.uint8) for v in (10, 20, 30)])
    >>> clip[2, :2] = 200  # the last frame has the most contrast
    >>> X = pd.DataFrame({"video": [clip]})
    >>> float(FrameSelector().fit_transform(X)["key_frame"].iloc[0][0, 0])
    20.0
    >>> float(FrameSelector(method="max_variance").fit_transform(X)["key_frame"].iloc[0][0, 0])
    200.0
    """

    _parameter_constraints = {
        "video_col": [str],
        "method": [StrOptions({"middle", "max_variance", "index"})],
        "index": [None, Interval(numbers.Integral, None, None, closed="neither")],
        "output_col": [str],
    }

    def __init__(self, video_col="video", *, method="middle", index=None, output_col="key_frame"):
        self.video_col = video_col
        self.method = method
        self.index = index
        self.output_col = output_col

    def _input_columns(self):
        return [self.video_col]

    def _output_columns(self):
        return [self.output_col]

    def _check_settings(self):
        if (self.method == "index") != (self.index is not None):
            raise ValueError(
                "index is needed with method='index' and only then; got "
                f"method={self.method!r}, index={self.index!r}."
            )
        if self.output_col == self.video_col:
            raise ValueError(f"output_col={self.output_col!r} would overwrite the clips.")

    def _transform(self, X, row_ids):
        frames = []
        for i, row_id in enumerate(row_ids):
            clip = read_cell(X, i, self.video_col, kind="video")
            frames.append(np.array(clip[self._pick(clip, row_id)], dtype=np.float32))
        return {self.output_col: frames}

    def _pick(self, clip, row_id):
        n = clip.shape[0]
        if self.method == "middle":
            return n // 2
        if self.method == "max_variance":
            return int(np.argmax(clip.reshape(n, -1).var(axis=1)))
        if not -n <= self.index < n:
            raise ValueError(
                f"row {row_id!r}: the clip in column {self.video_col!r} has {n} frames; "
                f"frame {self.index} does not exist."
            )
        return self.index % n
