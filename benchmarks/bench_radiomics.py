"""Benchmark: RadiomicsFeatures (joblib, content cache) against a plain serial pyradiomics loop.

On real BUSI breast-ultrasound lesions (half benign, half malignant; image and ground-truth
mask; original + wavelet + LoG image types, pyradiomics' default feature classes plus shape2D)
the script times, in one run:

1. the loop a pyradiomics user writes: read each image and mask, build SimpleITK images,
   ``RadiomicsFeatureExtractor.execute`` row after row;
2. ``RadiomicsFeatures(n_jobs=N, cache=<empty temporary folder>).fit_transform`` (worker start-up,
   name learning and cache writes included);
3. the same call again on the filled cache;

checks that the three tables are identical (the largest absolute difference is printed) and
prints the speed-ups. Goals: at least 1.8x for step 2 over step 1 on 2 cores, and step 3 at
least 20x faster than step 2.

Usage::

    python benchmarks/bench_radiomics.py
    python benchmarks/bench_radiomics.py --busi-dir path/to/Dataset_BUSI_with_GT --n 100 --n-jobs 2
"""

import argparse
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import radiomics
import SimpleITK as sitk
from radiomics.featureextractor import RadiomicsFeatureExtractor

from sklearn_alnm.datasets import load_busi
from sklearn_alnm.features._radiomics import RadiomicsFeatures, to_gray
from sklearn_alnm.io import read_image, read_mask

IMAGE_TYPES = {"Original": {}, "Wavelet": {}, "LoG": {"sigma": [1.0, 3.0]}}
FEATURE_CLASSES = ["firstorder", "glcm", "gldm", "glrlm", "glszm", "ngtdm", "shape2D"]


def default_busi_dir():
    env = os.environ.get("ALNM_BUSI_DIR")
    if env:
        return env
    return str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "busi")


def pick_rows(X, y, n):
    """``n`` rows, half benign and half malignant, evenly spread over each class."""
    rows = []
    for label, count in (("benign", n - n // 2), ("malignant", n // 2)):
        positions = np.flatnonzero(np.asarray(y == label))
        if count > len(positions):
            raise SystemExit(f"only {len(positions)} {label} images, asked for {count}")
        rows.extend(positions[np.linspace(0, len(positions) - 1, count).round().astype(int)])
    return X.iloc[sorted(rows)].reset_index(drop=True)


def plain_loop(X):
    """The serial loop: read, convert to SimpleITK with the spacing, execute, drop diagnostics."""
    extractor = RadiomicsFeatureExtractor(
        {
            "setting": {"additionalInfo": False},
            "imageType": IMAGE_TYPES,
            "featureClass": {name: [] for name in FEATURE_CLASSES},
        }
    )
    names, rows = None, []
    for image_ref, mask_ref in zip(X["image"], X["mask"]):
        image, spacing = read_image(image_ref, return_spacing=True)
        mask = read_mask(mask_ref, shape=image.shape, binary=False)
        sitk_image = sitk.GetImageFromArray(to_gray(image))
        sitk_mask = sitk.GetImageFromArray(mask)
        for item in (sitk_image, sitk_mask):
            item.SetSpacing((spacing[1], spacing[0]))
        result = extractor.execute(sitk_image, sitk_mask)
        names = [k for k in result if not k.startswith("diagnostics_")]
        rows.append([float(result[k]) for k in names])
    return names, np.array(rows)


def timed(func, *args):
    start, cpu = time.perf_counter(), time.process_time()
    result = func(*args)
    return result, time.perf_counter() - start, time.process_time() - cpu


def children_cpu_seconds():
    """CPU seconds used so far by the live child processes (the joblib workers); Linux only."""
    total, parent = 0.0, str(os.getpid())
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == parent:  # fields[1] is the parent pid, [11:13] utime and stime
                total += (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, ValueError, AttributeError):  # pragma: no cover - not Linux
        return float("nan")
    return total


def load_average():
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:  # pragma: no cover - not available on this platform
        return "load average unknown"


def compare(reference, other):
    same_nan = np.array_equal(np.isnan(reference), np.isnan(other))
    finite = ~np.isnan(reference)
    max_diff = float(np.max(np.abs(reference[finite] - other[finite]), initial=0.0))
    return same_nan and max_diff == 0.0, max_diff


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busi-dir", default=default_busi_dir(), help="BUSI folder")
    parser.add_argument("--n", type=int, default=100, help="number of lesions (default 100)")
    parser.add_argument("--n-jobs", type=int, default=2, help="joblib workers (default 2)")
    args = parser.parse_args(argv)

    radiomics.setVerbosity(logging.ERROR)  # pyradiomics' stderr warnings; workers follow
    X, y = load_busi(args.busi_dir, include_normal=False, return_X_y=True)
    X = pick_rows(X, y, args.n)
    print(
        f"{len(X)} BUSI lesions, image types {list(IMAGE_TYPES)}, classes {FEATURE_CLASSES}\n"
        f"pyradiomics {radiomics.__version__}, SimpleITK {sitk.Version.VersionString()}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPU cores"
    )

    print(f"before: {load_average()} (other processes compete for the cores)")
    (names, serial), t_serial, cpu_serial = timed(plain_loop, X)
    print(
        f"plain serial pyradiomics loop       : {t_serial:7.2f} s ({len(names)} features; "
        f"{cpu_serial / t_serial:.0%} of one core)"
    )

    with tempfile.TemporaryDirectory() as cache:
        transformer = RadiomicsFeatures(
            image_types=IMAGE_TYPES,
            feature_classes=FEATURE_CLASSES,
            n_jobs=args.n_jobs,
            cache=cache,
        )
        workers_before = children_cpu_seconds()
        first, t_first, cpu_parent = timed(transformer.fit_transform, X)
        cpu_first = cpu_parent + children_cpu_seconds() - workers_before
        print(
            f"RadiomicsFeatures(n_jobs={args.n_jobs}), first run : {t_first:7.2f} s "
            f"({cpu_first:.1f} CPU s in all processes = {cpu_first / cpu_serial:.2f} x the "
            f"loop's; {cpu_first / t_first:.2f} cores busy on average)"
        )
        again, t_cached, _ = timed(transformer.fit_transform, X)
        print(f"RadiomicsFeatures, cached re-run      : {t_cached:7.2f} s")
    print(f"after: {load_average()}")

    same_names = list(transformer.get_feature_names_out()) == names
    identical_first, diff_first = compare(serial, first)
    identical_again, diff_again = compare(serial, again)
    print(f"same feature names and order        : {same_names}")
    print(f"max |difference| first run vs loop  : {diff_first:.3g} (identical: {identical_first})")
    print(f"max |difference| cached vs loop     : {diff_again:.3g} (identical: {identical_again})")
    print(f"speed-up over the serial loop       : {t_serial / t_first:5.2f}x (goal >= 1.8x)")
    print(f"speed-up of the cached re-run       : {t_first / t_cached:5.1f}x (goal >= 20x)")
    ok = same_names and identical_first and identical_again
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
