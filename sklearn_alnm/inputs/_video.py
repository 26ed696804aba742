"""Video input: each row's clip as frames sampled, resized, cropped and normalised once per fit.

A :class:`VideoInput` reads a cohort's video column (files FFmpeg decodes, animated GIFs,
multi-frame DICOM, arrays; :func:`sklearn_alnm.io.read_video`), samples ``n_frames`` frames
per clip, maps the intensities to ``[0, 1]`` (8-bit range, else the clip's min / max),
resizes the frames (the short side to ``resize`` then a centre crop of ``frame_size``, or
straight to ``frame_size``) and normalises them. Every clip of a column gets the same
channels: 1 when all clips are gray, 3 when any is RGB. The prepared clips are held in one
tensor ``(N, C, T, H, W)``, so each clip is decoded once per ``fit`` / ``predict``.

``sampling="segments"`` is TSN's: the clip is cut into ``n_frames`` equal segments; three
candidate frames are prepared per segment, training batches take a random one of each
segment (:class:`SegmentSampler`) and validation and prediction the middle one.
:class:`ClipAugment` applies one random spatial transform to all frames of a clip.
"""

import hashlib
import numbers
import os
import threading
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

from ..io import read_cell, sample_frame_indices
from ..io._formats import is_path_like
from ..utils import CohortInputError, resolve_cache
from ..utils._imaging import intensity_bounds, to_unit_range
from ._augment import RandomResizedCropFlip
from ._base import BaseInput, TensorInputDataset, map_rows

#: Candidate frames prepared per segment with ``sampling="segments"``.
SEGMENT_CANDIDATES = 3
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


class VideoInput(BaseInput):
    """Read and prepare the clips of a cohort video column for a network.

    Parameters
    ----------
    video_col : str
        Cohort column of the clips.
    n_frames : int
        Frames per clip.
    sampling : {"uniform", "segments"}
        ``"uniform"``: frames at ``round(linspace(0, T - 1, n_frames))``; ``"segments"``:
        :data:`SEGMENT_CANDIDATES` candidates per segment (see the module docstring).
    frame_size : int
        Height and width of the prepared frames.
    resize : int or None
        Short side the frames are resized to before a centre crop of ``frame_size``
        (``crop="center"``); ``None`` resizes them to ``frame_size`` directly.
    crop : {"center"} or None
        ``None`` resizes to ``frame_size`` square whatever ``resize`` says.
    normalize : {"unit", "zscore", "kinetics"}
        ``"unit"``: pixels in ``[0, 1]``; ``"zscore"``: each clip's own mean and standard
        deviation; ``"kinetics"``: the channel statistics of torchvision's Kinetics-400
        weights (their means for gray clips).
    in_chans : int or None
        Channels; decided by the training clips when ``None``.
    short_clips : {"repeat", "error"}
        Clips with fewer frames than are sampled: ``"repeat"`` samples frames again (the
        indices of :func:`~sklearn_alnm.io.sample_frame_indices` repeat), ``"error"`` raises an
        error naming the row (such clips are then decoded whole to count their frames).
    cache : None, "memory", str, os.PathLike or FeatureCache
        Where prepared clips (sampled, resized, in ``[0, 1]``) are kept between fits, keyed
        by the clip's content (the file's bytes or the array) and the sampling and size
        settings: ``"memory"`` in this process (:data:`MEMORY_CACHE_BYTES` at most, least
        recently used first out), a folder for a :class:`~sklearn_alnm.utils.FeatureCache`
        on disk, ``None`` for none (each ``fit`` / ``predict`` decodes its clips once).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_alnm.inputs import VideoInput
    >>> X = pd.DataFrame({"video": [np.zeros((10, 40, 30), np.uint8)] * 2})
    >>> clips, chans = VideoInput("video", n_frames=4, frame_size=16, resize=20).prepare(X)
    >>> tuple(clips.shape), chans
    ((2, 1, 4, 16, 16), 1)
    """

    def __init__(
        self,
        video_col,
        *,
        n_frames=16,
        sampling="uniform",
        frame_size=224,
        resize=256,
        crop="center",
        normalize="unit",
        in_chans=None,
        short_clips="repeat",
        cache=None,
    ):
        self.video_col = video_col
        self.short_clips = short_clips
        self.cache = cache
        self.n_frames = int(n_frames)
        self.sampling = sampling
        self.frame_size = int(frame_size)
        self.resize = resize
        self.crop = crop
        self.normalize = normalize
        self.in_chans = in_chans

    def __repr__(self):
        return (
            f"VideoInput(video_col={self.video_col!r}, n_frames={self.n_frames}, "
            f"sampling={self.sampling!r}, frame_size={self.frame_size}, in_chans={self.in_chans})"
        )

    @property
    def columns(self):
        return [self.video_col]

    @property
    def frames_read(self):
        """Frames decoded per clip (``n_frames``, times the candidates with segments)."""
        return self.n_frames * (SEGMENT_CANDIDATES if self.sampling == "segments" else 1)

    def read_row(self, X, i):
        """The sampled frames of row position ``i``: float32 ``(T, H, W)`` or ``(T, H, W, 3)``."""
        if self.short_clips == "repeat":
            return read_cell(X, i, self.video_col, kind="video", n_frames=self.frames_read)
        frames = read_cell(X, i, self.video_col, kind="video")
        if len(frames) < self.frames_read:
            raise CohortInputError(
                f"the clip has {len(frames)} frames, fewer than the {self.frames_read} sampled "
                "(short_clips='error'; 'repeat' samples frames again)",
                row=self.row_ids(X.iloc[[i]])[0],  # this row's id only (a hot loop)
                column=self.video_col,
                path=_path_of(X[self.video_col].iloc[i]),
            )
        return frames[sample_frame_indices(len(frames), self.frames_read)]

    def prepare_row(self, frames):
        """Sampled frames -> float32 tensor ``(c, T, frame_size, frame_size)`` in ``[0, 1]``."""
        low, high = intensity_bounds(frames, "auto")
        unit = torch.from_numpy(np.ascontiguousarray(to_unit_range(frames, low, high)))
        unit = unit[:, None] if unit.ndim == 3 else unit.permute(0, 3, 1, 2)  # (T, c, H, W)
        height, width = unit.shape[-2:]
        size = self.frame_size
        if self.crop == "center" and self.resize is not None:
            scale = float(self.resize) / min(height, width)
            target = (max(size, round(height * scale)), max(size, round(width * scale)))
            unit = F.interpolate(
                unit, size=target, mode="bilinear", align_corners=False, antialias=True
            )
            top, left = (target[0] - size) // 2, (target[1] - size) // 2
            unit = unit[..., top : top + size, left : left + size]
        else:
            unit = F.interpolate(
                unit, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        return unit.transpose(0, 1).contiguous()  # (c, T, H, W)

    def _settings(self):
        return (self.frames_read, self.frame_size, self.resize, self.crop, self.short_clips)

    def _cache_key(self, X, i):
        cell = X[self.video_col].iloc[i]
        if is_path_like(cell):
            try:
                digest = _file_digest(os.fspath(cell))
            except OSError:
                return None  # the reader reports the missing file, naming the row
        elif isinstance(cell, np.ndarray):
            digest = hashlib.sha256(np.ascontiguousarray(cell).view(np.uint8)).hexdigest()
            digest += str((cell.dtype, cell.shape))
        else:
            return None
        return hashlib.sha256(repr((digest, self._settings())).encode()).hexdigest()

    def load_row(self, X, i):
        """The prepared clip of row position ``i``, from the cache when it holds it."""
        if self.cache is None:
            return self.prepare_row(self.read_row(X, i))
        key = self._cache_key(X, i)
        if key is None:
            return self.prepare_row(self.read_row(X, i))
        if self.cache == "memory":
            hit = _MEMORY.get(key)
            if hit is None:
                hit = self.prepare_row(self.read_row(X, i))
                _MEMORY.put(key, hit)
            return hit
        store = resolve_cache(self.cache)
        entry = store.load("video", key)
        if entry is not None:
            return torch.from_numpy(entry["clip"])
        clip = self.prepare_row(self.read_row(X, i))
        store.save("video", key, clip=clip.numpy())
        return clip

    def prepare(self, X, *, n_jobs=None, verbose=0, training=True):
        """Every clip of ``X`` -> ``(tensor (N, C, T', H, W), C)``; ``T'`` holds the segment
        candidates in training, only their middle frames otherwise."""
        rows = map_rows(
            lambda i: self.load_row(X, i),
            len(X),
            n_jobs=n_jobs,
            verbose=verbose,
            desc="reading clips",
            unit="clip",
        )
        in_chans = self.in_chans
        if in_chans is None:
            in_chans = 3 if any(row.shape[0] == 3 for row in rows) else 1
        frames = rows[0].shape[1]
        if self.sampling == "segments" and not training:
            frames = self.n_frames
        out = torch.empty((len(rows), in_chans, frames, self.frame_size, self.frame_size))
        for k, row in enumerate(rows):
            if self.sampling == "segments" and not training:
                row = row[:, SEGMENT_CANDIDATES // 2 :: SEGMENT_CANDIDATES]
            out[k] = _match_clip_channels(row, in_chans)
            rows[k] = None
        return self._normalize(out), in_chans

    def _normalize(self, clips):
        if self.normalize == "zscore":
            flat = clips.reshape(clips.shape[0], -1)
            std, mean = torch.std_mean(flat, dim=1, correction=0)
            shape = (-1, 1, 1, 1, 1)
            return clips.sub_(mean.view(shape)).div_(std.clamp(min=1e-6).view(shape))
        if self.normalize == "kinetics":
            gray = clips.shape[1] == 1
            mean = torch.tensor([sum(KINETICS_MEAN) / 3] if gray else KINETICS_MEAN)
            std = torch.tensor([sum(KINETICS_STD) / 3] if gray else KINETICS_STD)
            return clips.sub_(mean.view(1, -1, 1, 1, 1)).div_(std.view(1, -1, 1, 1, 1))
        return clips

    def dataset(self, X, target=None, *, training=False, n_jobs=None, verbose=0):
        """The clips of ``X`` (and ``target``) as a dataset; decides ``in_chans`` if unset."""
        clips, self.in_chans = self.prepare(X, n_jobs=n_jobs, verbose=verbose, training=training)
        return TensorInputDataset(clips, target)


#: Upper bound of the prepared clips kept by ``cache="memory"`` (bytes, per process).
MEMORY_CACHE_BYTES = 2 * 1024**3


class _ClipMemory:
    """Prepared clips by key, least recently used evicted beyond ``MEMORY_CACHE_BYTES``."""

    def __init__(self):
        self._clips = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            clip = self._clips.get(key)
            if clip is not None:
                self._clips.move_to_end(key)
            return clip

    def put(self, key, clip):
        size = clip.element_size() * clip.nelement()
        with self._lock:
            if key in self._clips or size > MEMORY_CACHE_BYTES:
                return
            self._clips[key] = clip
            self._bytes += size
            while self._bytes > MEMORY_CACHE_BYTES:
                _, old = self._clips.popitem(last=False)
                self._bytes -= old.element_size() * old.nelement()

    def clear(self):
        with self._lock:
            self._clips.clear()
            self._bytes = 0

    def __len__(self):
        return len(self._clips)


_MEMORY = _ClipMemory()


def _path_of(cell):
    return os.fspath(cell) if is_path_like(cell) else None


def _file_digest(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _match_clip_channels(clip, in_chans):
    channels = clip.shape[0]
    if channels == in_chans:
        return clip
    if channels == 1:
        return clip.expand(in_chans, *clip.shape[1:])
    return clip.mean(dim=0, keepdim=True)


class SegmentSampler:
    """Training batches of segment candidates ``(N, C, n_frames * k, H, W)`` -> one random
    candidate per segment ``(N, C, n_frames, H, W)``; validation batches, which bypass the
    training augmentation, take the middle candidate in the net (see
    :meth:`select_middle`)."""

    batched = True

    def __init__(self, n_frames, candidates=SEGMENT_CANDIDATES):
        self.n_frames = int(n_frames)
        self.candidates = int(candidates)

    def __repr__(self):
        return f"SegmentSampler(n_frames={self.n_frames}, candidates={self.candidates})"

    def __call__(self, clips):
        if clips.shape[2] != self.n_frames * self.candidates:
            return clips
        n = clips.shape[0]
        pick = torch.randint(0, self.candidates, (n, self.n_frames), device=clips.device)
        index = torch.arange(self.n_frames, device=clips.device) * self.candidates + pick
        gathered = torch.gather(
            clips,
            2,
            index.view(n, 1, self.n_frames, 1, 1).expand(-1, clips.shape[1], -1, *clips.shape[3:]),
        )
        return gathered

    def select_middle(self, clips):
        """The middle candidate of each segment (validation and inference)."""
        if clips.shape[2] != self.n_frames * self.candidates:
            return clips
        return clips[:, :, self.candidates // 2 :: self.candidates]


class ClipAugment:
    """One random spatial transform for every frame of a clip, brightness / contrast, and
    optional temporal jitter.

    The frames of a clip ``(C, T, H, W)`` are folded into channels, so the batched
    :class:`~sklearn_alnm.inputs.RandomResizedCropFlip` (random resized crop, horizontal
    flip) draws one map per clip; then each clip's intensities are scaled by a contrast
    factor in ``[1 - contrast, 1 + contrast]`` about its mean and shifted by a brightness
    offset in ``[-brightness, brightness]`` (in units of the clip's standard deviation).
    Temporal jitter moves each clip's frames by a random whole number of frames in
    ``[-temporal_jitter, temporal_jitter]`` (frame ``t`` shows frame ``t + s`` of the
    prepared clip; the first or last frame is repeated where ``t + s`` leaves the clip), so
    the network does not learn where in the sampled window an event happens.

    Parameters
    ----------
    spatial : callable or None, default=None
        A batched image augmentation; ``None`` uses ``RandomResizedCropFlip(scale=(0.7, 1.0))``.
    brightness, contrast : float, default=0.1
        Ranges of the intensity jitter (0 disables it).
    elastic : float or None, default=None
        Strength (``alpha``, pixels) of an elastic deformation drawn per clip and applied to
        every frame alike (:class:`torchvision.transforms.v2.ElasticTransform` on the clip's
        frames folded into channels; smoothing ``sigma`` 5 px, less on frames under 42 px);
        ``None`` disables it.
    temporal_jitter : int, default=0
        Largest shift in frames of the temporal jitter (0 disables it).

    Examples
    --------
    >>> import torch
    >>> from sklearn_alnm.inputs import ClipAugment
    >>> ClipAugment(temporal_jitter=1)(torch.rand(2, 1, 4, 16, 16)).shape
    torch.Size([2, 1, 4, 16, 16])
    """

    batched = True

    def __init__(self, spatial=None, brightness=0.1, contrast=0.1, elastic=None, temporal_jitter=0):
        if (
            isinstance(temporal_jitter, bool)
            or not isinstance(temporal_jitter, numbers.Integral)
            or temporal_jitter < 0
        ):
            raise ValueError(
                f"temporal_jitter must be a non-negative int (frames), got {temporal_jitter!r}"
            )
        self.spatial = spatial
        self.brightness = brightness
        self.contrast = contrast
        self.elastic = elastic
        self.temporal_jitter = int(temporal_jitter)

    def __repr__(self):
        return (
            f"ClipAugment(spatial={self.spatial!r}, brightness={self.brightness}, "
            f"contrast={self.contrast}, elastic={self.elastic}, "
            f"temporal_jitter={self.temporal_jitter})"
        )

    def __eq__(self, other):
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self):
        return hash(
            (
                type(self),
                repr(self.spatial),
                self.brightness,
                self.contrast,
                self.elastic,
                self.temporal_jitter,
            )
        )

    def __call__(self, clips):
        clips = jitter_frames(clips, self.temporal_jitter)
        n, c, t, h, w = clips.shape
        spatial = (
            self.spatial if self.spatial is not None else RandomResizedCropFlip(scale=(0.7, 1.0))
        )
        folded = spatial(clips.reshape(n, c * t, h, w))
        if self.elastic:
            from torchvision.transforms import v2

            # smoothing of the displacement field: sigma 5 px, less on small frames (its
            # Gaussian kernel, 8 sigma wide, must fit in the frame)
            sigma = max(0.5, min(5.0, (min(h, w) - 2) / 8.0))
            deform = v2.ElasticTransform(alpha=float(self.elastic), sigma=sigma)
            folded = torch.stack([deform(clip) for clip in folded])  # one field per clip
        out = folded.reshape(n, c, t, h, w)
        if self.brightness or self.contrast:
            opts = {"device": clips.device, "dtype": clips.dtype}
            shape = (n, 1, 1, 1, 1)
            mean = out.mean(dim=(1, 2, 3, 4), keepdim=True)
            std = out.std(dim=(1, 2, 3, 4), keepdim=True).clamp_min(1e-6)
            gain = 1 + float(self.contrast) * (2 * torch.rand(shape, **opts) - 1)
            shift = float(self.brightness) * (2 * torch.rand(shape, **opts) - 1) * std
            out = (out - mean) * gain + mean + shift
        return out


def jitter_frames(clips, max_shift):
    """Shift each clip ``(N, C, T, H, W)`` in time by a random integer in
    ``[-max_shift, max_shift]``, repeating the edge frame where the shift leaves the clip."""
    if not max_shift:
        return clips
    n, t = clips.shape[0], clips.shape[2]
    shift = torch.randint(-max_shift, max_shift + 1, (n, 1), device=clips.device)
    index = (torch.arange(t, device=clips.device) + shift).clamp_(0, t - 1)  # (N, T)
    index = index.view(n, 1, t, 1, 1).expand(-1, clips.shape[1], -1, *clips.shape[3:])
    return torch.gather(clips, 2, index)


class ComposeBatch:
    """Batched callables applied in order (e.g. segment sampling, then clip augmentation)."""

    batched = True

    def __init__(self, *steps):
        self.steps = [s for s in steps if s is not None]

    def __repr__(self):
        return f"ComposeBatch({', '.join(map(repr, self.steps))})"

    def __call__(self, batch):
        for step in self.steps:
            batch = step(batch)
        return batch
