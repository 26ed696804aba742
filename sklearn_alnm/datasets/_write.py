"""Write an in-memory synthetic cohort to image / video files and a manifest."""

import os

import pandas as pd

from .._logging import get_logger

_log = get_logger(__name__)

MANIFEST_NAME = "manifest.csv"
VIDEO_FPS = 8

# column -> (sub-folder, file-name suffix, extension, kind)
_LAYOUT = {
    "image": ("ultrasound", "", ".png", "image"),
    "mask": ("ultrasound", "_mask", ".png", "mask"),
    "cc_image": ("mammography", "_cc", ".nii.gz", "image"),
    "cc_mask": ("mammography", "_cc_mask", ".nii.gz", "mask"),
    "mlo_image": ("mammography", "_mlo", ".nii.gz", "image"),
    "mlo_mask": ("mammography", "_mlo_mask", ".nii.gz", "mask"),
    "pathology": ("pathology", "", ".png", "image"),
    "video": ("video", "", ".mp4", "video"),
}


def write_cohort(X, data_home, y=None):
    """Write the array cells of ``X`` under ``data_home``; return the table of paths.

    With ``y``, the manifest gets a last column ``label`` (the returned table does not).

    Layout (``<id>`` is the patient id)::

        data_home/manifest.csv
        data_home/ultrasound/<id>.png, <id>_mask.png
        data_home/mammography/<id>_cc.nii.gz, <id>_cc_mask.nii.gz, <id>_mlo.nii.gz, ...
        data_home/pathology/<id>.png
        data_home/video/<id>.mp4
        data_home/bag/<id>_<k>_<kind>.png, <id>_<k>_<kind>_mask.png  (k = 1, 2, ... in bag order)

    Cells of the returned table are absolute paths (``str``); the manifest stores them relative
    to ``data_home``. If writing fails, the files written by this call are removed again.
    """
    from ..io import save_manifest, write_image, write_mask, write_video

    writers = {"image": write_image, "mask": write_mask}
    root = os.path.abspath(os.fspath(data_home))
    if os.path.exists(root) and not os.path.isdir(root):
        raise ValueError(f"data_home must be a folder; {root!r} exists and is not a directory.")
    written = []
    created = []
    out = X.copy()
    ids = list(X["patient_id"])

    def folder(name):
        path = os.path.join(root, name)
        if not os.path.isdir(path):
            os.makedirs(path)
            created.append(path)
        return path

    try:
        if not os.path.isdir(root):
            os.makedirs(root)
            created.append(root)
        for column, (sub, suffix, ext, kind) in _LAYOUT.items():
            if column not in X.columns:
                continue
            target = folder(sub)
            paths = []
            for pid, array in zip(ids, X[column]):
                if array is None:  # a missing image (e.g. missing_pathology) stays empty
                    paths.append(None)
                    continue
                path = os.path.join(target, f"{pid}{suffix}{ext}")
                if kind == "video":
                    write_video(path, array, fps=VIDEO_FPS)
                else:
                    writers[kind](path, array)
                written.append(path)
                paths.append(path)
            out[column] = pd.Series(paths, index=X.index, dtype=object)
        for column, suffix, write in (("bag", "", write_image), ("bag_mask", "_mask", write_mask)):
            if column not in X.columns:
                continue
            target = folder("bag")
            bags = []
            for pid, bag, kinds in zip(ids, X[column], X["bag_kind"]):
                paths = []
                for k, (array, kind) in enumerate(zip(bag, kinds), start=1):
                    path = os.path.join(target, f"{pid}_{k}_{kind}{suffix}.png")
                    write(path, array)
                    written.append(path)
                    paths.append(path)
                bags.append(paths)
            cells = pd.Series([None] * len(X), index=X.index, dtype=object)
            for i, paths in enumerate(bags):
                cells.iat[i] = paths
            out[column] = cells
        manifest = os.path.join(root, MANIFEST_NAME)
        save_manifest(out if y is None else out.assign(label=y), manifest)
    except BaseException:
        for path in written:
            if os.path.exists(path):
                os.remove(path)
        for path in reversed(created):
            if os.path.isdir(path) and not os.listdir(path):
                os.rmdir(path)
        raise
    _log.info("wrote %d files and %s under %s", len(written), MANIFEST_NAME, root)
    return out
