"""Benchmark: fast DeLong (Sun & Xu midranks, O(N log N)) against the O(m n) definition.

For each cohort size the script draws one data set (two correlated scores with ties, about a
third of the patients positive), computes the 2 x 2 DeLong covariance matrix of the two AUCs
both ways, and prints the median wall time of each method together with the largest absolute
difference between the two covariance matrices.

Usage::

    python benchmarks/bench_delong.py
    python benchmarks/bench_delong.py --sizes 200 1000 5000 10000 --repeats 5 --seed 1
"""

import argparse
import time

import numpy as np

from sklearn_alnm.metrics._roc import _delong_covariance, _delong_placements


def quadratic_delong_covariance(pos, neg):
    """DeLong covariance from placements computed pair by pair (O(m n) time and memory).

    ``psi(x, y) = 1`` if ``x > y``, ``1/2`` if ``x == y``, else ``0``;
    ``V10_i = mean_j psi(X_i, Y_j)``, ``V01_j = mean_i psi(X_i, Y_j)``;
    ``S = cov(V10) / m + cov(V01) / n`` with unbiased covariances.
    """
    m, n = pos.shape[1], neg.shape[1]
    v10 = np.empty((pos.shape[0], m))
    v01 = np.empty((pos.shape[0], n))
    for k in range(pos.shape[0]):
        psi = (pos[k][:, None] > neg[k][None, :]) + 0.5 * (pos[k][:, None] == neg[k][None, :])
        v10[k] = psi.mean(axis=1)
        v01[k] = psi.mean(axis=0)
    x = v10 - v10.mean(axis=1, keepdims=True)
    y = v01 - v01.mean(axis=1, keepdims=True)
    return x @ x.T / (m - 1) / m + y @ y.T / (n - 1) / n


def fast_delong_covariance(pos, neg):
    _, v10, v01 = _delong_placements(pos, neg)
    return _delong_covariance(v10, v01)


def make_data(n, rng):
    y = rng.random(n) < 1 / 3
    latent = rng.normal(size=n) + 1.0 * y
    score_1 = np.round(latent + 0.5 * rng.normal(size=n), 1)  # rounded: ties
    score_2 = np.round(latent + 0.8 * rng.normal(size=n), 1)
    scores = np.vstack([score_1, score_2])
    return scores[:, y], scores[:, ~y]


def median_time(func, *args, repeats):
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func(*args)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[200, 1000, 5000], help="numbers of patients"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timings per method (median)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated cohorts")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)

    header = f"{'n':>7} {'cases':>6} {'fast (ms)':>11} {'O(n^2) (ms)':>12} {'speed-up':>9}"
    header += f" {'max |diff| of covariances':>26}"
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        pos, neg = make_data(n, rng)
        t_fast, cov_fast = median_time(fast_delong_covariance, pos, neg, repeats=args.repeats)
        t_slow, cov_slow = median_time(quadratic_delong_covariance, pos, neg, repeats=args.repeats)
        diff = float(np.max(np.abs(cov_fast - cov_slow)))
        print(
            f"{n:>7} {pos.shape[1]:>6} {t_fast * 1e3:>11.2f} {t_slow * 1e3:>12.2f} "
            f"{t_slow / t_fast:>8.1f}x {diff:>26.3e}"
        )


if __name__ == "__main__":
    main()
