"""Read and write ultrasound video clips (MP4/AVI and other containers, multi-frame DICOM).

Containers are decoded with PyAV (FFmpeg); multi-frame DICOM and other stacks of frames
(NIfTI, NRRD, MetaImage) with SimpleITK. When only ``n_frames`` frames are wanted and the
container reports its frame count, only those frames are converted and kept in memory.
"""

import os
from fractions import Fraction
from numbers import Integral, Real

import numpy as np

from .._logging import get_logger
from .._typing import ArrayLike, FilePath, ImageRef
from ..utils import CohortInputError
from ._formats import (
    CONTAINER_EXTENSIONS,
    VIDEO_EXTENSIONS,
    as_numeric_array,
    check_file,
    collapse_channels,
    is_path_like,
    read_sitk,
    sitk_message,
    split_extension,
)
from ._image import _integer_values

logger = get_logger(__name__)

# Extension -> (codec, pixel format, codec options) used by write_video. Both choices keep
# synthetic signals: H.264 at constant rate factor 0 with full-resolution chroma is lossless in
# YUV (only the RGB <-> YUV conversion rounds: gray values come back within +-1, colours within
# +-2), FFV1 in RGB is exactly lossless.
_WRITE_CODECS = {
    ".mp4": ("libx264", "yuv444p", {"crf": "0"}),
    ".m4v": ("libx264", "yuv444p", {"crf": "0"}),
    ".mov": ("libx264", "yuv444p", {"crf": "0"}),
    ".mkv": ("ffv1", "bgr0", {}),
    ".avi": ("ffv1", "bgr0", {}),
}
_WRITE_EXTENSIONS = tuple(_WRITE_CODECS) + (".dcm",)


def sample_frame_indices(n_total: int, n_frames: int) -> np.ndarray:
    """Indices of ``n_frames`` frames spread uniformly over a clip of ``n_total`` frames.

    The indices are ``round(linspace(0, n_total - 1, n_frames))`` (numpy rounding), so the
    first and last frames are always included and frames repeat when
    ``n_total < n_frames``.

    Parameters
    ----------
    n_total : int
        Number of frames in the clip (>= 1).
    n_frames : int
        Number of frames wanted (>= 1).

    Returns
    -------
    indices : ndarray of shape (n_frames,), dtype int64

    Examples
    --------
    >>> from sklearn_alnm.io import sample_frame_indices
    >>> sample_frame_indices(10, 4)
    array([0, 3, 6, 9])
    >>> sample_frame_indices(3, 5)
    array([0, 0, 1, 2, 2])
    """
    if n_total < 1:
        raise ValueError(f"the clip must have at least one frame, got {n_total}")
    return np.round(np.linspace(0, n_total - 1, n_frames)).astype(np.int64)


def _check_n_frames(n_frames):
    if n_frames is None:
        return None
    if isinstance(n_frames, bool) or not isinstance(n_frames, Integral) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer or None, got {n_frames!r}")
    return int(n_frames)


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


def write_video(path: FilePath, frames: ArrayLike, *, fps: float = 8) -> str:
    """Write a clip of grayscale or RGB frames; the format follows the file extension.

    ============================  ===============================================================
    extension                     encoding
    ============================  ===============================================================
    ``.mp4``, ``.m4v``, ``.mov``  H.264 (libx264), 4:4:4 chroma, CRF 0: gray values come
                                  back within +-1, colours within +-2
    ``.avi``, ``.mkv``            FFV1 in RGB: exactly lossless
    ``.dcm``                      multi-frame DICOM (uncompressed), frame time stored in
                                  ``(0018,1063)``
    ============================  ===============================================================

    Both compressed choices favour fidelity over file size, so subtle synthetic signals survive
    a write/read round trip.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; its folder must exist.
    frames : array-like of shape (T, H, W), (T, H, W, 3) or (T, H, W, 4)
        Integer values in ``[0, 255]`` (float arrays holding integers are accepted). They are
        never rescaled or clipped. An alpha channel is dropped.
    fps : float, default=8
        Frame rate stored in the file.

    Returns
    -------
    path : str
        The written file.

    Raises
    ------
    ValueError
        If the extension is not supported, the frames are not of the shapes above, a value is
        not an integer in ``[0, 255]``, or ``fps`` is not positive.

    See Also
    --------
    read_video : The matching reader.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn_alnm.io import read_video, write_video
    >>> clip = np.stack([np.full((16, 16), 20 * t, dtype=np.uint8) for t in range(6)])
    >>> path = write_video(os.path.join(tempfile.mkdtemp(), "clip.avi"), clip, fps=10)
    >>> video, fps = read_video(path, return_fps=True)
    >>> video.shape, fps
    ((6, 16, 16), 10.0)
    >>> video[:, 0, 0]
    array([  0.,  20.,  40.,  60.,  80., 100.], dtype=float32)
    """
    if not is_path_like(path):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    ext = split_extension(path)
    if ext not in _WRITE_EXTENSIONS:
        raise CohortInputError(
            f"cannot write a video with extension {ext!r}; supported extensions: "
            + ", ".join(_WRITE_EXTENSIONS),
            path=path,
        )
    if isinstance(fps, bool) or not isinstance(fps, Real) or not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"folder {folder!r} does not exist; create it before writing")
    frames = as_numeric_array(frames, path=path)
    if not (frames.ndim == 3 or (frames.ndim == 4 and frames.shape[-1] in (1, 3, 4))) or (
        0 in frames.shape
    ):
        raise CohortInputError(
            "expected non-empty frames of shape (T, H, W), (T, H, W, 3) or (T, H, W, 4), got "
            f"shape {frames.shape}",
            path=path,
        )
    frames = _integer_values(
        frames, 0, 255, path, "video frames are 8-bit", hint="rescale to 0-255 explicitly"
    ).astype(np.uint8)
    if frames.ndim == 4:
        frames = frames[..., 0] if frames.shape[-1] == 1 else frames[..., :3]
    if ext == ".dcm":
        _write_dicom_video(path, frames, fps)
    else:
        _write_container(path, frames, fps, *_WRITE_CODECS[ext])
    logger.debug("wrote %d frames %s to %s", len(frames), frames.shape[1:], path)
    return os.fspath(path)


def _write_container(path, frames, fps, codec, pix_fmt, options):
    import av

    path = os.fspath(path)
    rate = Fraction(fps).limit_denominator(1001)
    height, width = frames.shape[1:3]
    try:
        with av.open(path, mode="w") as container:
            stream = container.add_stream(codec, rate=rate)
            stream.width, stream.height = width, height
            stream.pix_fmt = pix_fmt
            stream.options = dict(options)
            for frame in frames:
                if frame.ndim == 2:
                    frame = np.repeat(frame[:, :, None], 3, axis=2)
                video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), "rgb24")
                for packet in stream.encode(video_frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    except Exception as exc:
        if os.path.exists(path):
            os.remove(path)
        raise CohortInputError(
            f"could not encode the video with {codec}: {exc}", path=path
        ) from exc


def _write_dicom_video(path, frames, fps):
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(frames), isVector=frames.ndim == 4)
    image.SetMetaData("0018|1063", f"{1000.0 / fps:.6g}")  # Frame Time, ms
    path = os.fspath(path)
    try:
        sitk.WriteImage(image, path)
    except RuntimeError as exc:
        if os.path.exists(path):
            os.remove(path)
        raise CohortInputError(
            f"SimpleITK could not write the file: {sitk_message(exc)}", path=path
        ) from None


# --------------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------------


_CHANNELS = ("auto", "gray", "rgb")
# ITU-R BT.601 luma weights, for channels="gray" on a colour clip.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def set_video_channels(video, channels):
    """``video`` (T, H, W) or (T, H, W, 3) in the layout ``channels`` asks for.

    ``"gray"``: a colour clip becomes its luma (BT.601 weights); ``"rgb"``: a gray clip is
    repeated on three channels; ``"auto"``: unchanged.
    """
    if channels == "gray" and video.ndim == 4:
        return np.tensordot(video, _LUMA, axes=([3], [0])).astype(np.float32)
    if channels == "rgb" and video.ndim == 3:
        return np.repeat(video[..., None], 3, axis=3)
    return video


def read_video(
    ref: ImageRef,
    n_frames: int | None = None,
    *,
    channels: str | int = "auto",
    return_fps: bool = False,
) -> np.ndarray | tuple[np.ndarray, float | None]:
    """Read a video clip (file or array) as float32 frames (T, H, W) or (T, H, W, 3).

    With ``channels="auto"`` channels are normalised as in :func:`read_image`: a clip whose
    three channels are equal in every frame is returned as grayscale, an alpha channel is
    dropped. Intensities are not rescaled.

    Parameters
    ----------
    ref : str, os.PathLike or numpy.ndarray
        A container that FFmpeg decodes (``.mp4``, ``.avi``, ``.mov``, ``.mkv``, ``.m4v``,
        ``.webm``, ``.mpg``/``.mpeg``, ``.wmv``, animated ``.gif``), a multi-frame DICOM
        file (``.dcm`` or an extension-less file with the ``DICM`` preamble) or another stack
        of 2-D frames that SimpleITK reads (NIfTI, NRRD, MetaImage; the slowest axis is time),
        or an array of shape (T, H, W) or (T, H, W, C) with C in 1-4.
    n_frames : int, default=None
        Return this many frames sampled uniformly over the whole clip, at indices
        ``round(linspace(0, T - 1, n_frames))`` (see :func:`sample_frame_indices`); frames
        repeat when the clip is shorter. ``None`` returns every frame. When the container
        reports its frame count only the sampled frames are kept in memory; otherwise the clip
        is decoded fully and then sampled.
    channels : {"auto", "gray", "rgb"}, default="auto"
        Layout of the result: ``"gray"`` always (T, H, W) (a colour clip becomes its BT.601
        luma), ``"rgb"`` always (T, H, W, 3) (gray repeated), ``"auto"`` gray when the
        channels are equal, else RGB. :func:`read_column` applies one layout to a whole
        column, so clips of one cohort always stack.
    return_fps : bool, default=False
        Also return the frame rate (``None`` when unknown, e.g. for arrays).

    Returns
    -------
    video : ndarray of shape (T, H, W) or (T, H, W, 3), dtype float32
        ``T = n_frames`` when given.
    fps : float or None
        Only when ``return_fps=True``.

    Raises
    ------
    CohortInputError
        A :class:`ValueError` naming the file: missing, unreadable or truncated file,
        unsupported extension (the supported ones are listed), no video stream or no frame,
        arrays of the wrong dimensionality or non-numeric arrays.

    See Also
    --------
    write_video : The matching writer.
    read_column : Read a whole cohort column with row/column-aware errors.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_alnm.io import read_video
    >>> clip = np.arange(10, dtype=np.uint8).reshape(10, 1, 1) * np.ones((1, 4, 4), np.uint8)
    >>> read_video(clip, n_frames=4)[:, 0, 0]
    array([0., 3., 6., 9.], dtype=float32)
    """
    n_frames = _check_n_frames(n_frames)
    if channels not in _CHANNELS:
        raise ValueError(f"channels must be one of {_CHANNELS}; got {channels!r}")
    fps = None
    if is_path_like(ref):
        path = os.fspath(ref)
        ext = check_file(path, VIDEO_EXTENSIONS, "video")
        if ext in CONTAINER_EXTENSIONS:
            frames, fps = _decode_container(path, n_frames)
            has_axis = True
        else:
            frames, fps, has_axis = _read_stack(path, ext, n_frames)
    elif isinstance(ref, np.ndarray):
        path = None
        frames = as_numeric_array(ref)
        if frames.ndim == 4 and frames.shape[-1] in (1, 2, 3, 4):
            has_axis = True
        elif frames.ndim == 3:
            has_axis = False
        else:
            raise CohortInputError(
                "expected a video array of shape (T, H, W) or (T, H, W, C) with C in 1-4, got "
                f"shape {frames.shape}"
            )
        if 0 in frames.shape:
            raise CohortInputError(f"expected a non-empty video array, got shape {frames.shape}")
        if n_frames is not None:
            frames = frames[sample_frame_indices(len(frames), n_frames)]
    else:
        raise CohortInputError(
            "expected a file path (str or os.PathLike) or a numpy array for the video, got "
            f"{type(ref).__name__}"
        )
    frames = collapse_channels(frames, channel_axis_present=has_axis, path=path, what="video")
    video = set_video_channels(frames.astype(np.float32), channels)
    return (video, fps) if return_fps else video


def _read_stack(path, ext, n_frames):
    array, _, is_vector, meta = read_sitk(path, ext)
    spatial = array.ndim - (1 if is_vector else 0)
    if spatial == 2:  # a single frame
        array = array[None]
    elif spatial != 3:
        raise CohortInputError(
            f"has {spatial} dimensions; expected a stack of 2-D frames (T, H, W)", path=path
        )
    if n_frames is not None:
        array = array[sample_frame_indices(len(array), n_frames)]
    return array, _dicom_fps(meta), is_vector


def _dicom_fps(meta):
    for key, scale in (("0018|0040", None), ("0008|2144", None), ("0018|1063", "ms")):
        try:
            value = float(meta[key].strip().split("\\")[0])
        except (KeyError, ValueError, IndexError):
            continue
        if value > 0:
            return 1000.0 / value if scale == "ms" else value
    return None


def _decode_container(path, n_frames):
    """Decode ``path`` with PyAV; return ``(frames (T, H, W, 3) uint8, fps)``."""
    import av

    try:
        with av.open(path) as container:
            stream = _video_stream(container, path)
            fps = float(stream.average_rate) if stream.average_rate else None
            reported = int(stream.frames or 0)
            if n_frames is not None and reported > 0:
                wanted = sample_frame_indices(reported, n_frames)
                kept, n_decoded = _decode_selected(container, stream, set(wanted.tolist()))
                if n_decoded == reported:
                    return np.stack([kept[i] for i in wanted]), fps
                logger.debug(
                    "%s reports %d frames but %d were decoded; decoding it again fully",
                    path,
                    reported,
                    n_decoded,
                )
        with av.open(path) as container:
            stream = _video_stream(container, path)
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except CohortInputError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, RuntimeError) as exc:
        raise CohortInputError(
            f"cannot be decoded as a video (unreadable, truncated or corrupt file): {exc}",
            path=path,
        ) from None
    if not frames:
        raise CohortInputError("contains no decodable video frame", path=path)
    frames = np.stack(frames)
    if n_frames is not None:
        frames = frames[sample_frame_indices(len(frames), n_frames)]
    return frames, fps


def _video_stream(container, path):
    if not container.streams.video:
        raise CohortInputError("has no video stream; expected a video file", path=path)
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return stream


def _decode_selected(container, stream, wanted):
    """Decode every frame but convert and keep only those whose index is in ``wanted``."""
    kept = {}
    n_decoded = 0
    for index, frame in enumerate(container.decode(stream)):
        if index in wanted:
            kept[index] = frame.to_ndarray(format="rgb24")
        n_decoded = index + 1
    return kept, n_decoded
