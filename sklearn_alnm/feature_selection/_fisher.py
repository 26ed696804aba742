"""Fisher's exact test of independence for 2 x k contingency tables.

SciPy computes Fisher's exact test exactly only for 2 x 2 tables; for larger tables it draws a
Monte Carlo (or permutation) sample of tables, so its p-value is random and coarse. A binary
label against a categorical factor always gives a 2 x k table, for which the exact p-value of
R's ``fisher.test`` can be computed by enumerating the tables with the observed margins. This
module does that with a network algorithm in the spirit of Mehta and Patel (1983): the columns
are the stages of the network, the running first-row total the node, and whole sub-networks
are accounted for at once with exact bounds, so only the tables near the significance
boundary are visited one by one.
"""

import math

import numpy as np
from scipy.special import gammaln

# Tables whose probability is within this relative tolerance of the observed one count as
# "as extreme" (R's fisher.test uses the same 1e-7).
_RELATIVE_TOLERANCE = 1e-7


class _EnumerationBudgetExceeded(RuntimeError):
    """The exact enumeration would visit more network nodes than allowed."""


def _log_binomial(log_factorial, n, k):
    return log_factorial[n] - log_factorial[k] - log_factorial[n - k]


def _bounds(columns, row_total, log_factorial):
    """Largest and smallest log-weight that the columns ``j:`` can still contribute.

    For a remaining first-row total ``t`` the completions of stage ``j`` are the vectors
    ``a_j, ..., a_{k-1}`` with ``0 <= a_l <= c_l`` and ``sum a_l = t``; their log-weight is
    ``sum_l log C(c_l, a_l)``. ``hi[j][t]`` / ``lo[j][t]`` are its maximum / minimum, computed
    by dynamic programming from the last column backwards (``-inf`` / ``+inf`` where ``t`` is
    not reachable).
    """
    k = columns.shape[0]
    hi = [None] * (k + 1)
    lo = [None] * (k + 1)
    hi[k] = np.full(row_total + 1, -np.inf)
    lo[k] = np.full(row_total + 1, np.inf)
    hi[k][0] = lo[k][0] = 0.0
    for j in range(k - 1, -1, -1):
        c = int(columns[j])
        best = np.full(row_total + 1, -np.inf)
        worst = np.full(row_total + 1, np.inf)
        for a in range(min(c, row_total) + 1):
            w = _log_binomial(log_factorial, c, a)
            # t = a + t' for every reachable t' of the next stage.
            np.maximum(best[a:], w + hi[j + 1][: row_total + 1 - a], out=best[a:])
            np.minimum(worst[a:], w + lo[j + 1][: row_total + 1 - a], out=worst[a:])
        hi[j] = best
        lo[j] = worst
    return hi, lo


def fisher_exact_2xk(table, *, max_nodes=2_000_000):
    """Exact two-sided Fisher test for a 2 x k table (R ``fisher.test``).

    The p-value is the total probability, under independence with both margins fixed, of
    the tables whose probability does not exceed that of the observed table:

    .. math::

        P(a) = \\frac{\\prod_j \\binom{c_j}{a_j}}{\\binom{n}{r_1}}, \\qquad
        p = \\sum_{a:\\, P(a) \\le P(a_{obs}) (1 + 10^{-7})} P(a)

    with :math:`a_j` the first-row count of column :math:`j`, :math:`c_j` the column totals,
    :math:`r_1` the first-row total and :math:`n` the grand total. For a 2 x 2 table this is
    the two-sided p-value of :func:`scipy.stats.fisher_exact`.

    Parameters
    ----------
    table : array-like of shape (2, k)
        Contingency table of non-negative integer counts.
    max_nodes : int, default=2_000_000
        Largest number of network nodes (partial tables) to create before giving up; bounds
        the time and memory spent on one table (about a second per million nodes).

    Returns
    -------
    statistic : float
        Probability of the observed table under the null hypothesis (what SciPy reports as
        the statistic for tables larger than 2 x 2).
    pvalue : float

    Raises
    ------
    _EnumerationBudgetExceeded
        When the enumeration needs more than ``max_nodes`` nodes.
    """
    table = np.asarray(table, dtype=np.int64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or np.any(table.sum(axis=1) == 0):
        return 1.0, 1.0
    # The first row is the smaller one: fewer reachable totals per stage.
    if table[0].sum() > table[1].sum():
        table = table[::-1]
    columns = table.sum(axis=0)
    row_total = int(table[0].sum())
    n = int(columns.sum())
    k = columns.shape[0]
    log_factorial = gammaln(np.arange(n + 1) + 1.0)
    log_total = _log_binomial(log_factorial, n, row_total)
    w_observed = float(np.sum(_log_binomial(log_factorial, columns, table[0])))
    limit = w_observed + math.log1p(_RELATIVE_TOLERANCE)
    hi, lo = _bounds(columns, row_total, log_factorial)
    suffix = np.concatenate([np.cumsum(columns[::-1])[::-1], [0]])

    pvalue = 0.0
    # The live paths of the current stage: running first-row total, log-weight, multiplicity.
    totals = np.zeros(1, dtype=np.int64)
    weights = np.zeros(1)
    counts = np.ones(1)
    n_nodes = 0
    for j in range(k):
        remaining = row_total - totals
        # Every completion is at least as extreme: add the whole sub-network at once; its
        # total weight is C(suffix_j, t) (Vandermonde's identity).
        done = weights + hi[j][remaining] <= limit
        if np.any(done):
            log_rest = _log_binomial(log_factorial, suffix[j], remaining[done])
            pvalue += float(np.sum(counts[done] * np.exp(weights[done] + log_rest - log_total)))
        # No completion is as extreme: drop the sub-network.
        live = ~done & (weights + lo[j][remaining] <= limit)
        totals, weights, counts, remaining = (
            totals[live],
            weights[live],
            counts[live],
            remaining[live],
        )
        if totals.shape[0] == 0:
            break
        c = int(columns[j])
        low = np.maximum(0, remaining - suffix[j + 1])
        n_nodes += int(np.sum(np.minimum(c, remaining) - low + 1))
        if n_nodes > max_nodes:
            raise _EnumerationBudgetExceeded(
                f"the exact Fisher test needs more than {max_nodes} network nodes"
            )
        parts = []
        for a in range(min(c, row_total) + 1):
            ok = (remaining >= a) & (remaining - a <= suffix[j + 1])
            if np.any(ok):
                w = _log_binomial(log_factorial, c, a)
                parts.append((totals[ok] + a, weights[ok] + w, counts[ok]))
        totals = np.concatenate([p[0] for p in parts])
        weights = np.concatenate([p[1] for p in parts])
        counts = np.concatenate([p[2] for p in parts])
        # Merge the paths that reach the same node with the same log-weight.
        keys = np.round(weights, 9)
        order = np.lexsort((keys, totals))
        totals, weights, counts, keys = totals[order], weights[order], counts[order], keys[order]
        first = np.ones(totals.shape[0], dtype=bool)
        first[1:] = (totals[1:] != totals[:-1]) | (keys[1:] != keys[:-1])
        starts = np.flatnonzero(first)
        counts = np.add.reduceat(counts, starts)
        totals, weights = totals[starts], weights[starts]
    # At the last column the completion is forced (hi == lo), so every path has been counted
    # or dropped by the time the loop ends.
    statistic = math.exp(w_observed - log_total)
    return statistic, min(pvalue, 1.0)
