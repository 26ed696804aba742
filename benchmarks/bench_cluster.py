"""Benchmark: radiomics on a Dask cluster against joblib's loky and a serial run; peak memory.

Part 1, on real BUSI breast-ultrasound lesions (half benign, half malignant; image and
ground-truth mask; original + wavelet + LoG image types, pyradiomics' default feature classes
plus shape2D), times in one run, each without a cache:

1. ``RadiomicsFeatures(n_jobs=1)`` (serial);
2. ``RadiomicsFeatures(n_jobs=N)`` on joblib's default loky backend;
3. the same call under ``sklearn_alnm.utils.parallel_backend`` on a ``dask.distributed``
   ``LocalCluster`` of N single-threaded worker processes with Dask's default worker
   environment (started before the clock runs, as a real cluster is running before a study
   starts);
4. the same on the local cluster ``parallel_backend`` starts itself (no ``scheduler``), whose
   workers keep glibc's malloc defaults (Dask's default ``MALLOC_TRIM_THRESHOLD_`` turns off
   glibc's dynamic mmap threshold; part 0 times its cost on a plain numpy task);

checks that the four tables are identical and prints the times and ratios. Goal: the cluster
within 15 % of loky (on one machine both share the same cores; the point is that the cluster's
overhead is small).

Part 2 runs radiomics on cohorts of ``--rows`` sizes (default 1,000 and 10,000 rows, each row
a small synthetic lesion file, every row a new extraction) in fresh processes and prints each
process's peak resident memory: the rows stream through the workers, so peak memory should not
grow with the cohort beyond its feature table (8 bytes per feature per row).

Usage::

    python benchmarks/bench_cluster.py
    python benchmarks/bench_cluster.py --busi-dir path/to/Dataset_BUSI_with_GT --n 200 --n-jobs 2
    python benchmarks/bench_cluster.py --skip-busi --rows 1000 10000
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

FEATURE_CLASSES = ["firstorder", "glcm", "gldm", "glrlm", "glszm", "ngtdm", "shape2D"]
IMAGE_TYPES = {"Original": {}, "Wavelet": {}, "LoG": {"sigma": [1.0, 3.0]}}


def default_busi_dir():
    env = os.environ.get("ALNM_BUSI_DIR")
    if env:
        return env
    return str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "busi")


def busi_rows(busi_dir, n):
    from sklearn_alnm.datasets import load_busi

    X, y = load_busi(busi_dir, include_normal=False, return_X_y=True)
    rows = []
    for label, count in (("benign", n - n // 2), ("malignant", n // 2)):
        positions = np.flatnonzero(np.asarray(y == label))
        rows.extend(positions[np.linspace(0, len(positions) - 1, count).round().astype(int)])
    return X.iloc[sorted(rows)].reset_index(drop=True)


def _plain_work():
    """A fixed numpy + Python workload (no library code); returns its own duration."""
    start = time.perf_counter()
    a = np.random.default_rng(0).normal(size=(300, 300))
    for _ in range(30):
        np.sort(a, axis=None)
        [x * 2 for x in range(20000)]
        a @ a
    return time.perf_counter() - start


_MALLOC_VAR = "MALLOC_TRIM_THRESHOLD_"
_MALLOC_BEFORE = os.environ.get(_MALLOC_VAR)


def _forget_dask_malloc_env():
    """Dask's nanny exports its malloc variable into this process too; later child processes
    (the next cluster's workers, part 2's processes) must not inherit it from there."""
    if _MALLOC_BEFORE is None:
        os.environ.pop(_MALLOC_VAR, None)


def part_plain(args):
    """The same plain task timed inside loky workers and inside Dask workers, with Dask's
    default worker environment and with the one of the library's local cluster."""
    import dask
    from distributed import Client, LocalCluster
    from joblib import Parallel, delayed

    from sklearn_alnm.utils._cluster import _LOCAL_DASK_CONFIG

    loky = Parallel(n_jobs=args.n_jobs)(delayed(_plain_work)() for _ in range(12))[4:]
    results = {"loky worker": loky}
    for name, config in (
        ("Dask worker, Dask's default environment", {}),
        ("Dask worker, MALLOC_TRIM_THRESHOLD_ unset", _LOCAL_DASK_CONFIG),
    ):
        with (
            dask.config.set(config),
            LocalCluster(
                n_workers=args.n_jobs, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            results[name] = client.gather(client.map(lambda i: _plain_work(), range(12)))[4:]
        _forget_dask_malloc_env()
    print("\nplain numpy + Python task (no library code), median of 8 after warm-up:")
    base = np.median(loky)
    for name, times in results.items():
        print(f"  {name:44s} {np.median(times) * 1000:5.0f} ms ({np.median(times) / base:.2f}x)")


def part_busi(args):
    import joblib
    from distributed import LocalCluster

    from sklearn_alnm._logging import silence_pyradiomics
    from sklearn_alnm.features import RadiomicsFeatures
    from sklearn_alnm.utils import parallel_backend

    silence_pyradiomics()
    X = busi_rows(args.busi_dir, args.n)

    def extractor(n_jobs):
        return RadiomicsFeatures(
            image_types=IMAGE_TYPES, feature_classes=FEATURE_CLASSES, n_jobs=n_jobs
        )

    times, tables = {}, {}
    start = time.perf_counter()
    tables["serial"] = extractor(1).fit_transform(X)
    times["serial"] = time.perf_counter() - start

    start = time.perf_counter()
    tables["loky"] = extractor(args.n_jobs).fit_transform(X)
    times["loky"] = time.perf_counter() - start
    joblib.externals.loky.get_reusable_executor().shutdown(wait=True)

    with LocalCluster(
        n_workers=args.n_jobs, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        spec = {"backend": "dask", "scheduler": cluster.scheduler_address, "n_jobs": args.n_jobs}
        with parallel_backend(spec):
            extractor(args.n_jobs).fit_transform(X.iloc[:4])  # workers import the library
            start = time.perf_counter()
            tables["dask_default"] = extractor(args.n_jobs).fit_transform(X)
            times["dask_default"] = time.perf_counter() - start
    _forget_dask_malloc_env()

    # the library's own local cluster (no scheduler given): glibc's malloc defaults
    with parallel_backend({"backend": "dask", "n_jobs": args.n_jobs}):
        extractor(args.n_jobs).fit_transform(X.iloc[:4])
        start = time.perf_counter()
        tables["dask"] = extractor(args.n_jobs).fit_transform(X)
        times["dask"] = time.perf_counter() - start

    others = ("loky", "dask_default", "dask")
    diff = max(float(np.nanmax(np.abs(tables[k] - tables["serial"]))) for k in others)
    identical = all(np.array_equal(tables[k], tables["serial"], equal_nan=True) for k in others)
    print(f"\nradiomics of {len(X)} BUSI lesions, {tables['serial'].shape[1]} features each")
    print(f"  serial (n_jobs=1)                  {times['serial']:7.1f} s")
    print(
        f"  loky (n_jobs={args.n_jobs})                     {times['loky']:7.1f} s  "
        f"({times['serial'] / times['loky']:.2f}x serial)"
    )
    for key, name in (
        ("dask_default", f"Dask LocalCluster ({args.n_jobs} workers), Dask's default environment"),
        ("dask", f"the library's local Dask cluster ({args.n_jobs} workers)"),
    ):
        print(
            f"  {name:66s} {times[key]:7.1f} s  ({times['serial'] / times[key]:.2f}x serial; "
            f"{times[key] / times['loky']:.3f} of loky's time)"
        )
    print(f"  tables identical: {identical} (largest absolute difference {diff:.3g})")


def _child(n_rows, n_jobs):
    """Run in a fresh process: radiomics of ``n_rows`` file rows; print peak memory as JSON."""
    import pandas as pd

    from sklearn_alnm._logging import silence_pyradiomics
    from sklearn_alnm.datasets import make_alnm_cohort
    from sklearn_alnm.features import RadiomicsFeatures

    silence_pyradiomics()
    home = tempfile.mkdtemp(prefix="alnm-bench-")
    X, _ = make_alnm_cohort(
        50, modalities=("ultrasound",), image_size=48, random_state=0, data_home=home
    )
    # the cohort table of n_rows rows points at these files (a clinic's manifest of paths)
    big = pd.concat([X] * (n_rows // len(X) + 1), ignore_index=True).iloc[:n_rows]
    big["patient_id"] = [f"P{i:06d}" for i in range(n_rows)]
    cohort_mb = big.memory_usage(deep=True).sum() / 2**20
    start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    tracemalloc.start()  # Python and numpy allocations made by the work itself
    features = RadiomicsFeatures(feature_classes=["firstorder", "shape2D"], n_jobs=n_jobs)
    table = features.fit_transform(big)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "rows": n_rows,
        "features": table.shape[1],
        "seconds": seconds,
        "peak_mb": peak / 1024,
        "before_mb": start_rss / 1024,
        "traced_mb": traced_peak / 2**20,
        "cohort_mb": cohort_mb,
    }
    print(json.dumps(result))


def part_memory(args):
    print(
        f"\nradiomics peak memory of the main process (n_jobs={args.n_jobs}, fresh process "
        "per size)"
    )
    results = []
    for n_rows in args.rows:
        out = (
            subprocess.run(
                [sys.executable, __file__, "--child", str(n_rows), "--n-jobs", str(args.n_jobs)],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        result = json.loads(out)
        results.append(result)
        table_mb = result["rows"] * result["features"] * 8 / 2**20
        print(
            f"  {result['rows']:6d} rows: peak RSS {result['peak_mb']:.1f} MB (before the work "
            f"{result['before_mb']:.1f} MB); allocated by the work at its peak "
            f"{result['traced_mb']:.1f} MB (cohort table {result['cohort_mb']:.1f} MB, feature "
            f"table {table_mb:.1f} MB); {result['seconds']:.1f} s"
        )
    if len(results) > 1:
        growth = results[-1]["peak_mb"] - results[0]["peak_mb"]
        traced = results[-1]["traced_mb"] - results[0]["traced_mb"]
        print(
            f"  from {results[0]['rows']} to {results[-1]['rows']} rows: peak RSS +{growth:.1f} "
            f"MB, allocations of the work +{traced:.1f} MB"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busi-dir", default=default_busi_dir())
    parser.add_argument("--n", type=int, default=200, help="BUSI lesions (default 200)")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--rows", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--skip-busi", action="store_true")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _child(args.child, args.n_jobs)
        return
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}"
    )
    part_plain(args)
    if not args.skip_busi:
        if not Path(args.busi_dir).exists():
            print(f"BUSI not found at {args.busi_dir}; skipping part 1 (--busi-dir)")
        else:
            part_busi(args)
    if args.rows:
        part_memory(args)


if __name__ == "__main__":
    main()
