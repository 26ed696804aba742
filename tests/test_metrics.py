"""Tests of sklearn_alnm.metrics: pROC reference values, hand-derived examples, cross-checks.

The reference values of the ROC part come from R pROC's own test suite on its aSAH data set
(113 patients with aneurysmal subarachnoid haemorrhage; outcome "Poor" = positive: 41 cases,
72 controls; markers ndka, wfns and s100b; direction "controls < cases"). The raw marker
values are not reproduced here. pROC's test suite does publish, for every marker, DeLong's
placements of each patient (in patient order), and DeLong's AUC, variance, covariance and test
depend on the data only through those placements. The scores below are therefore rebuilt,
rank-equivalent versions of the markers, and ``test_rebuilt_scores_reproduce_proc_placements``
proves that they give pROC's placements exactly before any pROC number is compared.

How the scores were rebuilt (all values are integers):
* case i: ``2 * m * X_i`` = 2 x (number of controls below the case) + (number of tied
  controls), with m = 72 controls and X_i pROC's placement of the case;
* control j: ``2 * r_j - 1``, with r_j the midrank of the control among the controls when they
  are sorted by *decreasing* pROC placement Y_j (more cases above = lower marker value).
A case with b controls strictly below and t tied controls scores 2b + t, and exactly those t
controls (positions b+1..b+t, midrank b + (t+1)/2) score 2b + t as well.
"""

import math
import pickle
import warnings
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score

from sklearn_alnm.io import write_mask
from sklearn_alnm.metrics import (
    DeLongTestResult,
    binary_metrics,
    calibration_table,
    decision_curve,
    delong_roc_covariance,
    delong_roc_variance,
    delong_test,
    dice_score,
    dice_scorer,
    format_performance_table,
    hosmer_lemeshow,
    iou_score,
    iou_scorer,
    make_segmentation_scorer,
    net_interventions_avoided,
    npv_score,
    npv_scorer,
    performance_table,
    pixel_precision_score,
    pixel_recall_score,
    ppv_score,
    ppv_scorer,
    roc_auc_ci,
    sensitivity_score,
    sensitivity_scorer,
    specificity_score,
    specificity_scorer,
    youden_threshold,
)
from sklearn_alnm.metrics._calibration import _quantile_type7, _r_seq_probs
from sklearn_alnm.metrics._roc import _bootstrap_aucs, _delong_placements

# ---------------------------------------------------------------------------------------------
# Reference data: R pROC test suite, aSAH data (see the module docstring).
# ---------------------------------------------------------------------------------------------
N_CASES, N_CONTROLS = 41, 72
# Cases ("Poor" outcome) first, then controls ("Good"), each in pROC's patient order.
ASAH_Y = np.array([1] * N_CASES + [0] * N_CONTROLS)

# fmt: off
# Rebuilt rank-equivalent marker values (see the module docstring): 41 cases, then 72 controls.
ASAH_SCORES = {
    "ndka": [
        116, 90, 98, 110, 6, 40, 74, 134, 140, 134, 134, 58, 104, 124, 24, 36, 102, 2, 144, 124, 62,
        74, 80, 102, 128, 93, 124, 36, 142, 109, 6, 49, 124, 6, 48, 134, 76, 104, 138, 74, 110, 1,
        38, 30, 68, 15, 109, 15, 120, 100, 120, 113, 139, 44, 15, 85, 15, 15, 143, 91, 54, 54, 120,
        4, 30, 15, 49, 96, 30, 106, 136, 30, 15, 85, 44, 30, 96, 131, 126, 60, 78, 141, 15, 113, 54,
        68, 68, 106, 4, 113, 85, 44, 68, 120, 68, 78, 30, 54, 68, 131, 38, 85, 93, 136, 75, 85, 44,
        131, 60, 103, 126, 15, 100
    ],
    "wfns": [
        117, 94, 128, 140, 140, 140, 140, 94, 140, 94, 37, 94, 140, 128, 128, 94, 140, 140, 140, 94,
        140, 94, 140, 94, 128, 140, 128, 128, 37, 128, 128, 94, 94, 140, 140, 94, 94, 140, 140, 140,
        140, 37, 37, 37, 37, 140, 37, 94, 94, 37, 94, 94, 37, 37, 37, 94, 37, 94, 37, 37, 117, 128,
        37, 128, 37, 140, 140, 37, 37, 94, 128, 37, 37, 94, 94, 37, 94, 37, 94, 94, 37, 37, 37, 37,
        94, 37, 94, 37, 37, 117, 94, 128, 94, 37, 128, 37, 37, 140, 128, 94, 94, 37, 37, 37, 117,
        37, 94, 94, 128, 128, 37, 37, 37
    ],
    "s100b": [
        81, 63, 103, 78, 130, 144, 140, 26, 123, 50, 26, 128, 126, 139, 144, 118, 144, 144, 144, 26,
        144, 120, 0, 50, 116, 144, 118, 144, 38, 118, 81, 63, 74, 116, 144, 88, 144, 121, 144, 144,
        130, 81, 88, 63, 10, 134, 111, 63, 63, 10, 38, 10, 50, 74, 26, 111, 26, 74, 81, 111, 10,
        103, 88, 125, 50, 142, 134, 103, 26, 129, 134, 74, 38, 50, 38, 10, 81, 63, 88, 96, 10, 10,
        50, 10, 50, 38, 103, 50, 38, 123, 74, 119, 26, 63, 121, 26, 10, 117, 127, 63, 96, 38, 88,
        63, 26, 10, 111, 96, 134, 111, 96, 142, 139
    ],
}

# pROC's DeLong placements, direction "<", as listed in its test suite: X one per case
# (= P(control < case) + P(tie)/2), Y one per control (= P(case > control) + P(tie)/2).
PROC_X = {
    "ndka": [
        0.805555555555556, 0.625, 0.680555555555556, 0.763888888888889, 0.0416666666666667,
        0.277777777777778, 0.513888888888889, 0.930555555555556, 0.972222222222222,
        0.930555555555556, 0.930555555555556, 0.402777777777778, 0.722222222222222,
        0.861111111111111, 0.166666666666667, 0.25, 0.708333333333333, 0.0138888888888889, 1,
        0.861111111111111, 0.430555555555556, 0.513888888888889, 0.555555555555556,
        0.708333333333333, 0.888888888888889, 0.645833333333333, 0.861111111111111, 0.25,
        0.986111111111111, 0.756944444444444, 0.0416666666666667, 0.340277777777778,
        0.861111111111111, 0.0416666666666667, 0.333333333333333, 0.930555555555556,
        0.527777777777778, 0.722222222222222, 0.958333333333333, 0.513888888888889,
        0.763888888888889
    ],
    "wfns": [
        0.8125, 0.652777777777778, 0.888888888888889, 0.972222222222222, 0.972222222222222,
        0.972222222222222, 0.972222222222222, 0.652777777777778, 0.972222222222222,
        0.652777777777778, 0.256944444444444, 0.652777777777778, 0.972222222222222,
        0.888888888888889, 0.888888888888889, 0.652777777777778, 0.972222222222222,
        0.972222222222222, 0.972222222222222, 0.652777777777778, 0.972222222222222,
        0.652777777777778, 0.972222222222222, 0.652777777777778, 0.888888888888889,
        0.972222222222222, 0.888888888888889, 0.888888888888889, 0.256944444444444,
        0.888888888888889, 0.888888888888889, 0.652777777777778, 0.652777777777778,
        0.972222222222222, 0.972222222222222, 0.652777777777778, 0.652777777777778,
        0.972222222222222, 0.972222222222222, 0.972222222222222, 0.972222222222222
    ],
    "s100b": [
        0.5625, 0.4375, 0.715277777777778, 0.541666666666667, 0.902777777777778, 1,
        0.972222222222222, 0.180555555555556, 0.854166666666667, 0.347222222222222,
        0.180555555555556, 0.888888888888889, 0.875, 0.965277777777778, 1, 0.819444444444444, 1, 1,
        1, 0.180555555555556, 1, 0.833333333333333, 0, 0.347222222222222, 0.805555555555556, 1,
        0.819444444444444, 1, 0.263888888888889, 0.819444444444444, 0.5625, 0.4375,
        0.513888888888889, 0.805555555555556, 1, 0.611111111111111, 1, 0.840277777777778, 1, 1,
        0.902777777777778
    ],
}

PROC_Y = {
    "ndka": [
        1, 0.829268292682927, 0.878048780487805, 0.707317073170732, 0.902439024390244,
        0.402439024390244, 0.902439024390244, 0.317073170731707, 0.51219512195122,
        0.317073170731707, 0.341463414634146, 0.0731707317073171, 0.804878048780488,
        0.902439024390244, 0.585365853658537, 0.902439024390244, 0.902439024390244,
        0.024390243902439, 0.560975609756098, 0.75609756097561, 0.75609756097561, 0.317073170731707,
        0.975609756097561, 0.878048780487805, 0.902439024390244, 0.768292682926829,
        0.536585365853659, 0.878048780487805, 0.414634146341463, 0.0975609756097561,
        0.878048780487805, 0.902439024390244, 0.585365853658537, 0.804878048780488,
        0.878048780487805, 0.536585365853659, 0.195121951219512, 0.219512195121951,
        0.731707317073171, 0.609756097560976, 0.0487804878048781, 0.902439024390244,
        0.341463414634146, 0.75609756097561, 0.707317073170732, 0.707317073170732,
        0.414634146341463, 0.975609756097561, 0.341463414634146, 0.585365853658537,
        0.804878048780488, 0.707317073170732, 0.317073170731707, 0.707317073170732,
        0.609756097560976, 0.878048780487805, 0.75609756097561, 0.707317073170732,
        0.195121951219512, 0.829268292682927, 0.585365853658537, 0.548780487804878,
        0.0975609756097561, 0.634146341463415, 0.585365853658537, 0.804878048780488,
        0.195121951219512, 0.731707317073171, 0.463414634146341, 0.219512195121951,
        0.902439024390244, 0.51219512195122
    ],
    "wfns": [
        0.975609756097561, 0.975609756097561, 0.975609756097561, 0.975609756097561,
        0.219512195121951, 0.975609756097561, 0.804878048780488, 0.804878048780488,
        0.975609756097561, 0.804878048780488, 0.804878048780488, 0.975609756097561,
        0.975609756097561, 0.975609756097561, 0.804878048780488, 0.975609756097561,
        0.804878048780488, 0.975609756097561, 0.975609756097561, 0.646341463414634,
        0.536585365853659, 0.975609756097561, 0.536585365853659, 0.975609756097561,
        0.219512195121951, 0.219512195121951, 0.975609756097561, 0.975609756097561,
        0.804878048780488, 0.536585365853659, 0.975609756097561, 0.975609756097561,
        0.804878048780488, 0.804878048780488, 0.975609756097561, 0.804878048780488,
        0.975609756097561, 0.804878048780488, 0.804878048780488, 0.975609756097561,
        0.975609756097561, 0.975609756097561, 0.975609756097561, 0.804878048780488,
        0.975609756097561, 0.804878048780488, 0.975609756097561, 0.975609756097561,
        0.646341463414634, 0.804878048780488, 0.536585365853659, 0.804878048780488,
        0.975609756097561, 0.536585365853659, 0.975609756097561, 0.975609756097561,
        0.219512195121951, 0.536585365853659, 0.804878048780488, 0.804878048780488,
        0.975609756097561, 0.975609756097561, 0.975609756097561, 0.646341463414634,
        0.975609756097561, 0.804878048780488, 0.804878048780488, 0.536585365853659,
        0.536585365853659, 0.975609756097561, 0.975609756097561, 0.975609756097561
    ],
    "s100b": [
        0.707317073170732, 0.670731707317073, 0.804878048780488, 0.975609756097561,
        0.341463414634146, 0.634146341463415, 0.804878048780488, 0.804878048780488,
        0.975609756097561, 0.890243902439024, 0.975609756097561, 0.853658536585366,
        0.768292682926829, 0.939024390243902, 0.634146341463415, 0.939024390243902,
        0.768292682926829, 0.707317073170732, 0.634146341463415, 0.975609756097561,
        0.646341463414634, 0.670731707317073, 0.439024390243902, 0.853658536585366,
        0.292682926829268, 0.341463414634146, 0.646341463414634, 0.939024390243902,
        0.390243902439024, 0.341463414634146, 0.768292682926829, 0.890243902439024,
        0.853658536585366, 0.890243902439024, 0.975609756097561, 0.707317073170732,
        0.804878048780488, 0.670731707317073, 0.658536585365854, 0.975609756097561,
        0.975609756097561, 0.853658536585366, 0.975609756097561, 0.853658536585366,
        0.890243902439024, 0.646341463414634, 0.853658536585366, 0.890243902439024,
        0.451219512195122, 0.768292682926829, 0.51219512195122, 0.939024390243902,
        0.804878048780488, 0.475609756097561, 0.939024390243902, 0.975609756097561,
        0.585365853658537, 0.414634146341463, 0.804878048780488, 0.658536585365854,
        0.890243902439024, 0.670731707317073, 0.804878048780488, 0.939024390243902,
        0.975609756097561, 0.634146341463415, 0.658536585365854, 0.341463414634146,
        0.634146341463415, 0.658536585365854, 0.292682926829268, 0.329268292682927
    ],
}
# fmt: on

# pROC's reference values (pROC test suite, aSAH data).
PROC_THETA = {"ndka": 0.611957994579946, "wfns": 0.823678861788618, "s100b": 0.731368563685637}
PROC_CI_NDKA = (0.501244999271703, 0.611957994579946, 0.722670989888189)  # low, auc, high
PROC_ROC_TEST = {
    # (roc1, roc2): (Z, two-sided p, 95% CI of the AUC difference)
    ("wfns", "s100b"): (
        2.20898359144091,
        0.0271757822291882,
        (0.0104061769564846, 0.174214419249478),
    ),
    ("wfns", "ndka"): (
        2.79777591868904,
        0.00514557970691098,
        (0.0634011709339876, 0.3600405634833566),
    ),
    ("ndka", "s100b"): (
        -1.39077002573558,
        0.164295175223054,
        (-0.2876917446341914, 0.0488706064228094),
    ),
}


def _scores(marker):
    return np.asarray(ASAH_SCORES[marker], dtype=float)


def naive_placements(pos, neg):
    """DeLong's placements by their O(m n) definition (psi = 1 / 0.5 / 0 for > / = / <)."""
    pos = np.asarray(pos, float)
    neg = np.asarray(neg, float)
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    return psi.mean(), psi.mean(axis=1), psi.mean(axis=0)


def naive_cov(a, b):
    """Unbiased sample covariance written out: sum((a - mean a)(b - mean b)) / (len - 1)."""
    return float(np.sum((a - a.mean()) * (b - b.mean())) / (len(a) - 1))


# ---------------------------------------------------------------------------------------------
# pROC reference values
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("marker", ["ndka", "wfns", "s100b"])
def test_rebuilt_scores_reproduce_proc_placements(marker):
    scores = _scores(marker)
    assert len(scores) == N_CASES + N_CONTROLS
    assert len(PROC_X[marker]) == N_CASES and len(PROC_Y[marker]) == N_CONTROLS
    cases, controls = scores[ASAH_Y == 1], scores[ASAH_Y == 0]
    # Library (midrank) placements and the O(n^2) definition both equal pROC's, patient by patient.
    auc, v10, v01 = _delong_placements(cases[None, :], controls[None, :])
    np.testing.assert_allclose(v10[0], PROC_X[marker], rtol=0, atol=1e-12)
    np.testing.assert_allclose(v01[0], PROC_Y[marker], rtol=0, atol=1e-12)
    naive_auc, naive_x, naive_y = naive_placements(cases, controls)
    np.testing.assert_allclose(naive_x, PROC_X[marker], rtol=0, atol=1e-12)
    np.testing.assert_allclose(naive_y, PROC_Y[marker], rtol=0, atol=1e-12)
    assert auc[0] == pytest.approx(PROC_THETA[marker], abs=1e-12)
    assert roc_auc_ci(ASAH_Y, scores).auc == pytest.approx(PROC_THETA[marker], abs=1e-12)


def test_roc_auc_ci_delong_matches_proc_ci_auc():
    auc, low, high = roc_auc_ci(ASAH_Y, _scores("ndka"), method="delong")
    assert (low, auc, high) == pytest.approx(PROC_CI_NDKA, abs=1e-10)


@pytest.mark.parametrize("pair", list(PROC_ROC_TEST))
def test_delong_test_matches_proc_roc_test(pair):
    z_ref, p_ref, ci_ref = PROC_ROC_TEST[pair]
    result = delong_test(ASAH_Y, _scores(pair[0]), _scores(pair[1]))
    z, p = result
    assert z == pytest.approx(z_ref, abs=1e-10)
    assert p == pytest.approx(p_ref, abs=1e-10)
    assert (result.ci_low, result.ci_high) == pytest.approx(ci_ref, abs=1e-10)
    assert result.auc_1 == pytest.approx(PROC_THETA[pair[0]], abs=1e-12)
    assert result.auc_2 == pytest.approx(PROC_THETA[pair[1]], abs=1e-12)
    assert result.difference == pytest.approx(result.auc_1 - result.auc_2)


def test_delong_test_one_sided_matches_proc():
    wfns, s100b = _scores("wfns"), _scores("s100b")
    greater = delong_test(ASAH_Y, wfns, s100b, alternative="greater")
    less = delong_test(ASAH_Y, wfns, s100b, alternative="less")
    assert greater.pvalue == pytest.approx(0.0135878911145941, abs=1e-10)
    assert less.pvalue == pytest.approx(0.986412108885406, abs=1e-10)
    assert greater.statistic == less.statistic == pytest.approx(2.20898359144091, abs=1e-10)


def test_delong_test_identical_curves_gives_z0_p1():
    for marker in ("ndka", "wfns"):
        s = _scores(marker)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no division-by-zero warning
            assert tuple(delong_test(ASAH_Y, s, s)) == (0.0, 1.0)
            # A monotone transform gives the same placements, hence the same answer.
            assert tuple(delong_test(ASAH_Y, s, np.exp(s / 50.0))) == (0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# AUC and DeLong variance: hand-derived examples and the O(n^2) definition
# ---------------------------------------------------------------------------------------------
def test_auc_and_delong_ci_six_patients_by_hand():
    # Controls 0.1, 0.3, 0.6; cases 0.4, 0.7, 0.9.
    # Case placements V10: 0.4 beats 0.1 and 0.3 -> 2/3; 0.7 -> 1; 0.9 -> 1; AUC = 8/9.
    # Control placements V01: 0.1 -> 1; 0.3 -> 1; 0.6 (below 0.7, 0.9) -> 2/3.
    # S10 = ((-2/9)^2 + (1/9)^2 + (1/9)^2) / 2 = 1/27 = S01; Var = 1/27/3 + 1/27/3 = 2/81.
    y = [0, 0, 0, 1, 1, 1]
    s = [0.1, 0.3, 0.6, 0.4, 0.7, 0.9]
    auc, var = delong_roc_variance(y, s)
    assert auc == pytest.approx(8 / 9)
    assert var == pytest.approx(2 / 81)
    z = stats.norm.ppf(0.975)
    ci = roc_auc_ci(y, s)
    assert ci.low == pytest.approx(8 / 9 - z * math.sqrt(2) / 9)
    assert ci.high == 1.0  # 8/9 + 0.308 is clipped to 1
    assert isinstance(ci.low, float) and isinstance(ci.high, float)


def test_delong_variance_with_ties_by_hand():
    # Controls 0.2, 0.5; cases 0.5, 0.8 (one case tied with one control).
    # V10: case 0.5 -> (1 + 0.5)/2 = 0.75, case 0.8 -> 1; AUC = 0.875.
    # V01: control 0.2 -> 1, control 0.5 -> (0.5 + 1)/2 = 0.75.
    # S10 = S01 = 2 * 0.125^2 / 1 = 0.03125; Var = 0.03125/2 + 0.03125/2 = 0.03125.
    auc, var = delong_roc_variance([0, 0, 1, 1], [0.2, 0.5, 0.5, 0.8])
    assert auc == 0.875
    assert var == pytest.approx(0.03125)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_delong_equals_quadratic_definition_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = 150 + 50 * seed
    y = rng.integers(0, 2, n)
    # Integer scores on a small range: many ties within and across classes.
    s1 = rng.integers(0, 8, n) + 2 * y
    s2 = rng.integers(0, 5, n) + y
    pos = np.vstack([s1[y == 1], s2[y == 1]])
    neg = np.vstack([s1[y == 0], s2[y == 0]])
    auc, v10, v01 = _delong_placements(pos, neg)
    m, k = pos.shape[1], neg.shape[1]
    cov = np.empty((2, 2))
    for a in range(2):
        theta, x_a, y_a = naive_placements(pos[a], neg[a])
        assert auc[a] == pytest.approx(theta, abs=1e-12)
        np.testing.assert_allclose(v10[a], x_a, atol=1e-12)
        np.testing.assert_allclose(v01[a], y_a, atol=1e-12)
        for b in range(2):
            _, x_b, y_b = naive_placements(pos[b], neg[b])
            cov[a, b] = naive_cov(x_a, x_b) / m + naive_cov(y_a, y_b) / k
    assert delong_roc_variance(y, s1)[1] == pytest.approx(cov[0, 0], rel=1e-12)
    # The test statistic from the naive covariance matrix.
    d = auc[0] - auc[1]
    z = d / math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    result = delong_test(y, s1, s2)
    assert result.statistic == pytest.approx(z, rel=1e-10)
    assert result.pvalue == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_auc_matches_sklearn_and_mann_whitney(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 400)
    s = np.round(rng.normal(size=400) + y, 1)  # rounded: ties
    auc = roc_auc_ci(y, s).auc
    assert auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    u = stats.mannwhitneyu(s[y == 1], s[y == 0]).statistic
    assert auc == pytest.approx(u / ((y == 1).sum() * (y == 0).sum()), abs=1e-12)


def test_auc_direction_is_never_flipped():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 100)
    s = rng.normal(size=100) + y
    auc = roc_auc_ci(y, s).auc
    assert auc > 0.5
    reversed_ci = roc_auc_ci(y, -s)
    assert reversed_ci.auc == pytest.approx(1 - auc)
    assert reversed_ci.auc < 0.5


def test_labels_any_two_values_and_pos_label():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 80)
    s = rng.normal(size=80) + y
    ref = roc_auc_ci(y, s)
    assert roc_auc_ci(y.astype(bool), s) == pytest.approx(ref)
    assert roc_auc_ci(np.where(y == 1, 1, -1), s) == pytest.approx(ref)
    seven = pd.Series(np.where(y == 1, 7, 3))
    assert roc_auc_ci(seven, pd.Series(s), pos_label=7) == pytest.approx(ref)
    names = np.where(y == 1, "N+", "N0")
    assert roc_auc_ci(names, s, pos_label="N+") == pytest.approx(ref)
    # Without pos_label the positive class is never guessed from the sorted labels (which
    # would make "N0" positive, as "N0" > "N+").
    for labels in (names, seven):
        with pytest.raises(ValueError, match="cannot be guessed.*pos_label"):
            roc_auc_ci(labels, s)
    assert roc_auc_ci(y, s, pos_label=0).auc == pytest.approx(1 - ref.auc)


def test_roc_auc_ci_single_case_gives_nan_bounds_with_warning():
    with pytest.warns(UserWarning, match="at least two positive"):
        auc, low, high = roc_auc_ci([0, 0, 0, 1], [0.1, 0.2, 0.3, 0.4])
    assert auc == 1.0 and math.isnan(low) and math.isnan(high)
    assert math.isnan(delong_roc_variance([0, 0, 0, 1], [0.1, 0.2, 0.3, 0.4])[1])


def test_delong_test_zero_variance_nonzero_difference():
    # Score 1 separates perfectly (all placements 1); score 2 is constant (all placements 0.5):
    # both placement variances are 0, the difference is 0.5 -> infinite z, p = 0.
    y = [0, 0, 1, 1]
    z, p = delong_test(y, [0.1, 0.2, 0.8, 0.9], [1, 1, 1, 1])
    assert z == math.inf and p == 0.0


def test_delong_test_result_unpacks_and_pickles():
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    result = delong_test(y, [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9], [1, 2, 2, 3, 2, 3, 4, 4])
    assert isinstance(result, DeLongTestResult) and len(result) == 2
    z, p = result
    assert (z, p) == (result.statistic, result.pvalue) == (result[0], result[1])
    # AUCs by hand: model 15/16 (only the case 0.4 loses to the control 0.6);
    # reader: 27/32 (pairs counted with ties as 1/2).
    assert result.auc_1 == 15 / 16 and result.auc_2 == 27 / 32
    clone = pickle.loads(pickle.dumps(result))
    assert tuple(clone) == tuple(result) and clone.ci_low == result.ci_low
    assert "auc_1" in repr(result)


# ---------------------------------------------------------------------------------------------
# Bootstrap confidence interval
# ---------------------------------------------------------------------------------------------
def _loop_bootstrap(pos, neg, n_boot, chunk, seed):
    """Stratified percentile bootstrap with an explicit loop and sklearn's AUC."""
    rng = np.random.RandomState(seed)
    aucs = []
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        pos_idx = rng.randint(0, len(pos), size=(size, len(pos)))
        neg_idx = rng.randint(0, len(neg), size=(size, len(neg)))
        for i in range(size):
            s = np.concatenate([pos[pos_idx[i]], neg[neg_idx[i]]])
            yy = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
            aucs.append(roc_auc_score(yy, s))
    return np.array(aucs)


def _type7(values, prob):
    # R quantile type 7: h = (n - 1) p; x[floor h] + (h - floor h) (x[floor h + 1] - x[floor h]).
    x = np.sort(values)
    h = (len(x) - 1) * prob
    lo = int(math.floor(h))
    return x[lo] + (h - lo) * (x[min(lo + 1, len(x) - 1)] - x[lo])


def test_bootstrap_is_stratified_percentile_interval():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 60)
    s = np.round(rng.normal(size=60) + y, 1)
    ci = roc_auc_ci(y, s, method="bootstrap", n_bootstraps=200, random_state=7, confidence=0.9)
    aucs = _loop_bootstrap(s[y == 1], s[y == 0], 200, 200, seed=7)
    assert ci.low == pytest.approx(_type7(aucs, 0.05), abs=1e-12)
    assert ci.high == pytest.approx(_type7(aucs, 0.95), abs=1e-12)
    assert ci.auc == pytest.approx(roc_auc_score(y, s))


def test_bootstrap_in_chunks_equals_loop(monkeypatch):
    import sklearn_alnm.metrics._roc as roc_module

    rng = np.random.default_rng(6)
    pos, neg = rng.normal(1, size=15), rng.normal(size=20)
    monkeypatch.setattr(roc_module, "_BOOTSTRAP_CHUNK_ELEMENTS", 3 * 35)  # 3 replicates a chunk
    aucs = _bootstrap_aucs(pos, neg, 10, np.random.RandomState(1))
    np.testing.assert_allclose(aucs, _loop_bootstrap(pos, neg, 10, 3, seed=1), atol=1e-12)


def test_bootstrap_reproducible_and_contains_auc():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 120)
    s = rng.normal(size=120) + y
    a = roc_auc_ci(y, s, method="bootstrap", n_bootstraps=300, random_state=0)
    b = roc_auc_ci(y, s, method="bootstrap", n_bootstraps=300, random_state=0)
    c = roc_auc_ci(y, s, method="bootstrap", n_bootstraps=300, random_state=1)
    assert a == b
    assert a != c
    assert a.low <= a.auc <= a.high


def test_bootstrap_close_to_delong_on_large_sample():
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 3000)
    s = rng.normal(size=3000) + 0.9 * y
    delong = roc_auc_ci(y, s)
    boot = roc_auc_ci(y, s, method="bootstrap", n_bootstraps=1000, random_state=0)
    assert boot.auc == delong.auc
    assert boot.low == pytest.approx(delong.low, abs=0.006)
    assert boot.high == pytest.approx(delong.high, abs=0.006)


# ---------------------------------------------------------------------------------------------
# Threshold, binary metrics, scores and scorers
# ---------------------------------------------------------------------------------------------
def test_binary_metrics_youden_by_hand():
    # Sorted scores 0.1(0) 0.2(0) 0.3(1) 0.4(0) 0.6(1) 0.8(1); 3 positives, 3 negatives.
    # Candidates (midpoints): 0.15: J = 1 + 1/3 - 1 = 1/3; 0.25: J = 1 + 2/3 - 1 = 2/3;
    # 0.35: 2/3 + 2/3 - 1 = 1/3; 0.5: 2/3 + 1 - 1 = 2/3; 0.7: 1/3. Tie 0.25 / 0.5 -> lowest.
    y = [0, 0, 1, 0, 1, 1]
    s = [0.1, 0.2, 0.3, 0.4, 0.6, 0.8]
    assert youden_threshold(y, s) == 0.25
    r = binary_metrics(y, s)
    # At 0.25: predicted positive 0.3, 0.4, 0.6, 0.8 -> TP 3, FP 1, TN 2, FN 0.
    assert (r["tp"], r["fp"], r["tn"], r["fn"]) == (3, 1, 2, 0)
    assert r["threshold"] == 0.25
    assert r["accuracy"] == pytest.approx(5 / 6)
    assert r["sensitivity"] == 1.0
    assert r["specificity"] == pytest.approx(2 / 3)
    assert r["ppv"] == pytest.approx(3 / 4)
    assert r["npv"] == 1.0
    assert r["f1"] == pytest.approx(6 / 7)  # 2*3 / (2*3 + 1 + 0)


def test_threshold_rule_is_greater_or_equal():
    r = binary_metrics([0, 1, 1], [0.2, 0.5, 0.7], threshold=0.5)
    assert (r["tp"], r["fn"]) == (2, 0)  # the score equal to the threshold is positive


def _brute_force_youden(y, s):
    values = sorted(set(s))
    candidates = [-math.inf] + [(a + b) / 2 for a, b in zip(values, values[1:])] + [math.inf]
    n_pos, n_neg = sum(y), len(y) - sum(y)
    best, best_t = None, None
    for t in candidates:  # ascending; strict '>' keeps the lowest threshold on ties
        tp = sum(1 for yi, si in zip(y, s) if yi == 1 and si >= t)
        tn = sum(1 for yi, si in zip(y, s) if yi == 0 and si < t)
        j = Fraction(tp, n_pos) + Fraction(tn, n_neg) - 1
        if best is None or j > best:
            best, best_t = j, t
    return best_t


@pytest.mark.parametrize("seed", range(4))
def test_youden_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 60).tolist()
    s = (rng.integers(0, 12, 60) / 4 + np.array(y) * rng.integers(0, 3)).tolist()
    assert youden_threshold(y, s) == _brute_force_youden(y, s)


def test_youden_minus_inf_when_nothing_beats_all_positive():
    # Reversed scores: every finite cut-off has J < 0; "everybody positive" has J = 0.
    assert youden_threshold([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == -math.inf
    assert binary_metrics([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1])["sensitivity"] == 1.0


def test_binary_metrics_match_sklearn():
    rng = np.random.default_rng(10)
    y = rng.integers(0, 2, 200)
    s = rng.random(200) * 0.6 + 0.4 * y
    r = binary_metrics(y, s, threshold=0.45)
    pred = (s >= 0.45).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred).ravel()
    assert (r["tn"], r["fp"], r["fn"], r["tp"]) == (tn, fp, fn, tp)
    assert r["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert r["sensitivity"] == pytest.approx(recall_score(y, pred))
    assert r["specificity"] == pytest.approx(recall_score(y, pred, pos_label=0))
    assert r["ppv"] == pytest.approx(precision_score(y, pred))
    assert r["npv"] == pytest.approx(precision_score(y, pred, pos_label=0))
    assert r["f1"] == pytest.approx(f1_score(y, pred))


def test_training_threshold_applied_to_test_data():
    rng = np.random.default_rng(11)
    y_train, y_test = rng.integers(0, 2, 100), rng.integers(0, 2, 50)
    s_train, s_test = rng.random(100) + y_train, rng.random(50) + y_test
    train = binary_metrics(y_train, s_train)
    test = binary_metrics(y_test, s_test, threshold=train["threshold"])
    assert test["threshold"] == train["threshold"] == youden_threshold(y_train, s_train)
    assert test["tp"] + test["fn"] == int(y_test.sum())
    assert test["tp"] + test["fp"] == int(np.sum(s_test >= train["threshold"]))


def test_zero_denominators_give_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = binary_metrics([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], threshold=0.9)
        # Nobody predicted positive: PPV = 0/0, F1 = 0/(0 + 0 + 2) = 0.
        assert math.isnan(r["ppv"])
        assert r["f1"] == 0.0 and r["sensitivity"] == 0.0 and r["npv"] == 0.5
        # One class only is accepted with a fixed threshold; sensitivity is then undefined.
        r = binary_metrics([0, 0, 0], [0.1, 0.2, 0.8], threshold=0.5)
        assert math.isnan(r["sensitivity"]) and r["specificity"] == pytest.approx(2 / 3)
        assert math.isnan(npv_score([1, 1], [0, 0])) is False  # TN + FN = 2 -> 0.0
        assert math.isnan(ppv_score([0, 1], [0, 0]))


@pytest.mark.parametrize(
    "func, sk_func, kwargs",
    [
        (sensitivity_score, recall_score, {}),
        (specificity_score, recall_score, {"pos_label": 0}),
        (ppv_score, precision_score, {}),
        (npv_score, precision_score, {"pos_label": 0}),
    ],
)
def test_label_scores_match_sklearn(func, sk_func, kwargs):
    rng = np.random.default_rng(12)
    y, pred = rng.integers(0, 2, 100), rng.integers(0, 2, 100)
    assert func(y, pred) == pytest.approx(sk_func(y, pred, **kwargs))
    labels = np.array(["benign", "malignant"])
    got = func(labels[y], labels[pred], pos_label="malignant")
    assert got == pytest.approx(sk_func(y, pred, **kwargs))
    with pytest.raises(ValueError, match=r"\['benign', 'malignant'\].*pos_label"):
        func(labels[y], labels[pred])


def test_label_scores_by_hand_and_zero_division():
    # y = 0 0 0 1 1, pred = 0 1 0 1 0: TP 1, FN 1, FP 1, TN 2.
    y, pred = [0, 0, 0, 1, 1], [0, 1, 0, 1, 0]
    assert sensitivity_score(y, pred) == 0.5
    assert specificity_score(y, pred) == pytest.approx(2 / 3)
    assert ppv_score(y, pred) == 0.5
    assert npv_score(y, pred) == pytest.approx(2 / 3)
    assert ppv_score([0, 1], [0, 0], zero_division=0.0) == 0.0


@pytest.mark.parametrize(
    "scorer, func",
    [
        (sensitivity_scorer, sensitivity_score),
        (specificity_scorer, specificity_score),
        (ppv_scorer, ppv_score),
        (npv_scorer, npv_score),
    ],
)
def test_scorers_in_cross_validation(scorer, func):
    rng = np.random.default_rng(13)
    X = rng.normal(size=(90, 3))
    y = (X[:, 0] + rng.normal(size=90) > 0).astype(int)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(LogisticRegression(), X, y, cv=cv, scoring=scorer)
    manual = [
        func(y[test], LogisticRegression().fit(X[train], y[train]).predict(X[test]))
        for train, test in cv.split(X, y)
    ]
    np.testing.assert_allclose(scores, manual)


def test_scorers_in_grid_search():
    rng = np.random.default_rng(14)
    X = rng.normal(size=(90, 2))
    y = (X[:, 0] + rng.normal(size=90) > 0).astype(int)
    scoring = {"spec": specificity_scorer, "npv": npv_scorer, "ppv": ppv_scorer}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(LogisticRegression(), {"C": [0.01, 1.0]}, scoring=scoring, refit="spec")
    search.set_params(cv=cv).fit(X, y)
    train, test = next(iter(cv.split(X, y)))
    for i, c in enumerate((0.01, 1.0)):
        pred = LogisticRegression(C=c).fit(X[train], y[train]).predict(X[test])
        expected = npv_score(y[test], pred, zero_division=0.0)
        assert search.cv_results_["split0_test_npv"][i] == pytest.approx(expected)
    # With C = 0.01 every patient of the fold is predicted positive: NPV is 0/0, which the
    # function reports as NaN and the scorer as 0 (so that the candidate ranks last).
    pred = LogisticRegression(C=0.01).fit(X[train], y[train]).predict(X[test])
    assert math.isnan(npv_score(y[test], pred))
    assert search.cv_results_["split0_test_npv"][0] == 0.0
    assert search.best_params_["C"] in (0.01, 1.0)


# ---------------------------------------------------------------------------------------------
# Hosmer-Lemeshow
# ---------------------------------------------------------------------------------------------
def test_hosmer_lemeshow_by_hand():
    # g = 3: probs 0, 1/3, 2/3, 1; type-7 index h = 1 + 5p: 1, 2.667, 4.333, 6.
    # breaks: 0.1; 0.2 + 0.667 * 0.1 = 0.2667; 0.6 + 0.333 * 0.1 = 0.6333; 0.9.
    # groups [0.1, 0.2667] = {0.1 (y 0), 0.2 (y 0)}, (0.2667, 0.6333] = {0.3 (1), 0.6 (0)},
    # (0.6333, 0.9] = {0.7 (1), 0.9 (1)}.
    # group 1: O1 0 E1 0.3, O0 2 E0 1.7 -> 0.09/0.3 + 0.09/1.7
    # group 2: O1 1 E1 0.9, O0 1 E0 1.1 -> 0.01/0.9 + 0.01/1.1
    # group 3: O1 2 E1 1.6, O0 0 E0 0.4 -> 0.16/1.6 + 0.16/0.4
    expected = 0.09 / 0.3 + 0.09 / 1.7 + 0.01 / 0.9 + 0.01 / 1.1 + 0.16 / 1.6 + 0.16 / 0.4
    y = [0, 0, 1, 0, 1, 1]
    p = [0.1, 0.2, 0.3, 0.6, 0.7, 0.9]
    (stat, dof, pvalue), table = hosmer_lemeshow(y, p, n_groups=3, return_table=True)
    assert stat == pytest.approx(expected, rel=1e-12)
    assert dof == 1
    # chi-square with 1 dof: P(Z^2 > c) = 2 (1 - Phi(sqrt c)) = erfc(sqrt(c / 2)).
    assert pvalue == pytest.approx(math.erfc(math.sqrt(expected / 2)), rel=1e-12)
    assert pvalue == pytest.approx(stats.chi2.sf(expected, 1), rel=1e-12)
    np.testing.assert_allclose(table["high"], [0.2 + 0.1 * 2 / 3, 0.6 + 0.1 / 3, 0.9])
    assert table["n"].tolist() == [2, 2, 2]
    assert table["observed_1"].tolist() == [0, 1, 2]


def _hoslem_reference(y, p, g):
    """R's hoslem.test steps, with pandas' cut (same semantics as R's cut) and crosstab."""
    breaks = np.unique(np.quantile(p, np.arange(g + 1) / g))
    groups = pd.cut(p, breaks, include_lowest=True, right=True)
    frame = pd.DataFrame({"g": groups, "y1": y, "y0": 1 - y, "e1": p, "e0": 1 - p})
    sums = frame.groupby("g", observed=True)[["y0", "y1", "e0", "e1"]].sum()
    obs = sums[["y0", "y1"]].to_numpy()
    exp = sums[["e0", "e1"]].to_numpy()
    stat = float(np.sum((obs - exp) ** 2 / exp))
    return stat, g - 2, 1 - stats.chi2.cdf(stat, g - 2)


@pytest.mark.parametrize("seed, g", [(0, 10), (1, 10), (2, 8), (3, 5)])
def test_hosmer_lemeshow_matches_r_algorithm(seed, g):
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 3, 250)
    y = (rng.random(250) < p * 1.2).astype(int)
    stat, dof, pvalue = hosmer_lemeshow(y, p, n_groups=g)
    ref_stat, ref_dof, ref_p = _hoslem_reference(y, p, g)
    assert stat == pytest.approx(ref_stat, rel=1e-12)
    assert dof == ref_dof
    assert pvalue == pytest.approx(ref_p, rel=1e-9, abs=1e-15)


def test_hosmer_lemeshow_ties_keep_dof_g_minus_2():
    rng = np.random.default_rng(15)
    p = rng.choice([0.2, 0.5, 0.8], size=300)
    y = (rng.random(300) < p).astype(int)
    (stat, dof, pvalue), table = hosmer_lemeshow(y, p, return_table=True)
    assert dof == 8  # not reduced although only a few groups remain (as R)
    assert len(table) < 10
    ref_stat, _, _ = _hoslem_reference(y, p, 10)
    assert stat == pytest.approx(ref_stat, rel=1e-12)
    assert table["n"].sum() == 300 and table["observed_1"].sum() == y.sum()
    assert table["expected_1"].sum() == pytest.approx(p.sum())
    assert pvalue == pytest.approx(stats.chi2.sf(stat, 8))


def test_hosmer_lemeshow_empty_groups_dropped_with_warning():
    # Three patients, ten groups: the breaks interpolate between 0.1, 0.2 and 0.9 and most
    # groups are empty. Each non-empty group holds one patient, contributing
    # (1 - p)/p for y = 1 and p/(1 - p) for y = 0: 0.1/0.9 + 0.8/0.2 + 0.1/0.9 = 4 + 2/9.
    with pytest.warns(UserWarning, match="received no patient"):
        stat, dof, _ = hosmer_lemeshow([0, 1, 1], [0.1, 0.2, 0.9])
    assert stat == pytest.approx(4 + 2 / 9)
    assert dof == 8


def test_hosmer_lemeshow_zero_expected_warns():
    y = [0, 0, 0, 0, 1, 1, 0, 1]
    p = [0.0, 0.0, 0.0, 0.0, 0.6, 0.7, 0.8, 0.9]
    with pytest.warns(UserWarning, match="expected count of 0"):
        stat, _, _ = hosmer_lemeshow(y, p, n_groups=4)
    assert math.isnan(stat) or math.isinf(stat)


def test_quantile_type7_equals_numpy_linear():
    rng = np.random.default_rng(16)
    x = rng.random(37)
    probs = _r_seq_probs(10)
    assert probs[-1] == 1.0 and len(probs) == 11
    np.testing.assert_allclose(_quantile_type7(x, probs), np.quantile(x, probs), atol=1e-15)


# ---------------------------------------------------------------------------------------------
# Calibration table
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_calibration_table_agrees_with_sklearn(strategy):
    rng = np.random.default_rng(17)
    p = rng.beta(1.5, 3, 500)
    y = (rng.random(500) < p).astype(int)
    table = calibration_table(y, p, n_bins=10, strategy=strategy)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy=strategy)
    filled = table[table["n"] > 0]
    np.testing.assert_allclose(filled["observed"], prob_true, atol=1e-12)
    np.testing.assert_allclose(filled["mean_predicted"], prob_pred, atol=1e-12)
    assert table["n"].sum() == 500 and table["n_positive"].sum() == y.sum()


def test_calibration_table_uniform_keeps_empty_bins():
    p = np.array([0.05, 0.1, 0.3, 0.35, 0.4, 0.45])
    y = np.array([0, 0, 1, 0, 1, 1])
    table = calibration_table(y, p, n_bins=4, strategy="uniform")
    # Bins [0, .25], (.25, .5], (.5, .75], (.75, 1]: counts 2, 4, 0, 0.
    assert table["n"].tolist() == [2, 4, 0, 0]
    assert table["observed"].iloc[1] == 0.75
    assert table["mean_predicted"].iloc[1] == pytest.approx(0.375)  # (0.3 + 0.35 + 0.4 + 0.45) / 4
    assert table["observed"].iloc[2:].isna().all()
    prob_true, _ = calibration_curve(y, p, n_bins=4)
    np.testing.assert_allclose(table["observed"].iloc[:2], prob_true)


def test_calibration_table_wilson_interval():
    from statsmodels.stats.proportion import proportion_confint

    rng = np.random.default_rng(18)
    p = rng.random(300)
    y = (rng.random(300) < p).astype(int)
    table = calibration_table(y, p, n_bins=5, confidence=0.9)
    low, high = proportion_confint(table["n_positive"], table["n"], alpha=0.1, method="wilson")
    np.testing.assert_allclose(table["observed_low"], low, atol=1e-12)
    np.testing.assert_allclose(table["observed_high"], high, atol=1e-12)


def test_calibration_table_quantile_merges_tied_edges():
    p = np.repeat([0.2, 0.4, 0.6], 10)
    y = np.tile([0, 1], 15)
    table = calibration_table(y, p, n_bins=10)
    assert len(table) < 10 and table["n"].sum() == 30
    assert np.all(np.diff(table["high"]) > 0)


# ---------------------------------------------------------------------------------------------
# Decision curve
# ---------------------------------------------------------------------------------------------
def test_decision_curve_by_hand():
    # n = 6, prevalence 1/2. pt = 0.25: positive if p >= 0.25: 0.3 (1), 0.6 (0), 0.7 (1), 0.9 (1)
    # -> TP 3, FP 1; NB = 3/6 - 1/6 * (0.25/0.75) = 0.5 - 1/18; treat all = 1/2 - 1/2 * 1/3.
    # pt = 0.5: 0.6 (0), 0.7 (1), 0.9 (1) -> NB = 2/6 - 1/6 * 1 = 1/6; treat all = 0.
    y = [0, 0, 1, 0, 1, 1]
    p = [0.1, 0.2, 0.3, 0.6, 0.7, 0.9]
    curves = decision_curve(y, p, thresholds=[0.25, 0.5])
    assert list(curves.columns) == ["threshold", "model", "treat_all", "treat_none"]
    np.testing.assert_allclose(curves["model"], [0.5 - 1 / 18, 1 / 6])
    np.testing.assert_allclose(curves["treat_all"], [1 / 3, 0.0], atol=1e-15)
    assert (curves["treat_none"] == 0).all()


def test_decision_curve_threshold_rule_and_zero_probability():
    # p equal to the threshold is test positive (dcurves: risk >= threshold).
    curves = decision_curve([1, 0], [0.4, 0.1], thresholds=[0.4])
    assert curves["model"].iloc[0] == pytest.approx(0.5)
    # A risk of exactly 0 is never positive, not even at pt = 0 (dcurves uses 0 - eps):
    # TP = 1 (p = 0.5), FP = 0 (the control has p = 0) -> NB(0) = 1/2.
    curves = decision_curve([1, 0], [0.5, 0.0], thresholds=[0.0])
    assert curves["model"].iloc[0] == 0.5
    assert curves["treat_all"].iloc[0] == 0.5


def _dca_loop(y, p, thresholds):
    out = []
    n = len(y)
    for t in thresholds:
        tp = sum(1 for yi, pi in zip(y, p) if yi == 1 and pi >= t and pi > 0)
        fp = sum(1 for yi, pi in zip(y, p) if yi == 0 and pi >= t and pi > 0)
        out.append(tp / n - fp / n * t / (1 - t))
    return np.array(out)


def test_decision_curve_default_thresholds_and_brute_force():
    rng = np.random.default_rng(19)
    p = np.round(rng.random(120), 2)  # values on the threshold grid: exercises >=
    p[:3] = [0.0, 1.0, 0.0]
    y = (rng.random(120) < p).astype(int)
    y[:2] = [1, 1]
    curves = decision_curve(y, p)
    assert len(curves) == 100
    np.testing.assert_allclose(curves["threshold"], np.arange(100) / 100)
    np.testing.assert_allclose(curves["model"], _dca_loop(y, p, curves["threshold"]), atol=1e-12)
    t = curves["threshold"].to_numpy()
    np.testing.assert_allclose(curves["treat_all"], y.mean() - (1 - y.mean()) * t / (1 - t))
    # At pt = prevalence treating everybody has zero net benefit.
    assert decision_curve(y, p, thresholds=[y.mean()])["treat_all"].iloc[0] == pytest.approx(0)


def test_decision_curve_several_models():
    y = [0, 0, 1, 0, 1, 1]
    a = [0.1, 0.2, 0.3, 0.6, 0.7, 0.9]
    b = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    curves = decision_curve(y, {"radiomics": a, "constant": b}, thresholds=[0.25, 0.5])
    assert list(curves.columns) == ["threshold", "radiomics", "constant", "treat_all", "treat_none"]
    np.testing.assert_allclose(curves["radiomics"], decision_curve(y, a, [0.25, 0.5])["model"])
    # Everybody at 0.5 is test positive for both thresholds -> equals treat all.
    np.testing.assert_allclose(curves["constant"], curves["treat_all"], atol=1e-15)
    long = curves.melt(id_vars="threshold", var_name="strategy", value_name="net_benefit")
    assert len(long) == 8


@pytest.mark.parametrize("thresholds", [[0.5, 1.0], [-0.1, 0.5], [0.2, np.nan]])
def test_decision_curve_invalid_thresholds(thresholds):
    with pytest.raises(ValueError, match="thresholds"):
        decision_curve([0, 1], [0.2, 0.8], thresholds=thresholds)


def test_decision_curve_reserved_model_names():
    with pytest.raises(ValueError, match="reserved"):
        decision_curve([0, 1], {"treat_all": [0.2, 0.8]})
    with pytest.raises(ValueError, match="empty mapping"):
        decision_curve([0, 1], {})


# ---------------------------------------------------------------------------------------------
# Performance table
# ---------------------------------------------------------------------------------------------
def _cohorts():
    rng = np.random.default_rng(20)
    out = {}
    for name, n in (("train", 200), ("test", 90)):
        y = rng.integers(0, 2, n)
        p = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.2 * y - 0.6)))
        out[name] = (y, p)
    return out


def test_performance_table_values():
    cohorts = _cohorts()
    table = performance_table(cohorts)
    assert list(table.index) == ["train", "test"] and table.index.name == "cohort"
    assert all(pd.api.types.is_numeric_dtype(t) for t in table.dtypes)
    thr = youden_threshold(*cohorts["train"])
    for name, (y, p) in cohorts.items():
        row = table.loc[name]
        assert row["n"] == len(y) and row["n_positive"] == y.sum()
        assert (row["auc"], row["auc_low"], row["auc_high"]) == pytest.approx(roc_auc_ci(y, p))
        metrics = binary_metrics(y, p, threshold=thr)
        for key in ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1"):
            assert row[key] == pytest.approx(metrics[key])
        assert row["threshold"] == thr
        hl = hosmer_lemeshow(y, p)
        assert (row["hl_statistic"], row["hl_pvalue"]) == pytest.approx((hl[0], hl[2]))
    assert table.attrs["reference"] == "train" and table.attrs["confidence"] == 0.95


def test_performance_table_reference_and_fixed_threshold():
    cohorts = _cohorts()
    by_test = performance_table(cohorts, reference="test")
    assert (by_test["threshold"] == youden_threshold(*cohorts["test"])).all()
    fixed = performance_table(cohorts, threshold=0.5)
    y, p = cohorts["test"]
    assert fixed.loc["test", "sensitivity"] == pytest.approx(np.mean(p[y == 1] >= 0.5))
    boot = performance_table(cohorts, ci_method="bootstrap", n_bootstraps=200, random_state=0)
    assert (
        boot.loc["test", "auc_low"]
        == roc_auc_ci(y, p, method="bootstrap", n_bootstraps=200, random_state=0).low
    )


def test_performance_table_errors_name_the_cohort():
    y, p = _cohorts()["train"]
    with pytest.raises(ValueError, match="cohort 'bad'.*one value per patient"):
        performance_table({"train": (y, p), "bad": (y[:10], p)})
    with pytest.raises(ValueError, match="cohort 'bad'.*probabilities in"):
        performance_table({"train": (y, p), "bad": (y, p * 3)})
    with pytest.raises(ValueError, match="cohort 'bad'.*pair"):
        performance_table({"train": (y, p), "bad": y})
    with pytest.raises(ValueError, match="non-empty mapping"):
        performance_table({})
    with pytest.raises(ValueError, match="reference='valid'"):
        performance_table({"train": (y, p)}, reference="valid")


def test_performance_table_warnings_name_the_cohort():
    y, p = _cohorts()["train"]
    tiny = ([0, 1, 1], [0.1, 0.2, 0.9])
    with pytest.warns(UserWarning, match="cohort 'tiny'"):
        performance_table({"train": (y, p), "tiny": tiny}, ci_method="bootstrap")


def test_format_performance_table():
    cohorts = _cohorts()
    table = performance_table(cohorts, confidence=0.9)
    text = format_performance_table(table)
    assert list(text.index) == ["train", "test"]
    cell = text.loc["test", "AUC (90% CI)"]
    row = table.loc["test"]
    assert cell == f"{row['auc']:.3f} ({row['auc_low']:.3f}-{row['auc_high']:.3f})"
    assert text.loc["train", "N"] == "200"
    assert text.loc["train", "Sensitivity"] == f"{table.loc['train', 'sensitivity']:.3f}"
    # p-values below 10**-decimals, NaN cells.
    table.loc["train", "hl_pvalue"] = 1e-6
    table.loc["test", "ppv"] = np.nan
    text = format_performance_table(table, decimals=2)
    assert text.loc["train", "HL p-value"] == "<0.01"
    assert text.loc["test", "PPV"] == "NA"
    with pytest.raises(ValueError, match="missing the columns"):
        format_performance_table(table.drop(columns="auc"))


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
SCORE_FUNCS = {
    "roc_auc_ci": roc_auc_ci,
    "roc_auc_ci_bootstrap": lambda y, s: roc_auc_ci(y, s, method="bootstrap", n_bootstraps=10),
    "delong_roc_variance": delong_roc_variance,
    "delong_test": lambda y, s: delong_test(y, s, s),
    "youden_threshold": youden_threshold,
    "binary_metrics": binary_metrics,
    "hosmer_lemeshow": hosmer_lemeshow,
    "calibration_table": calibration_table,
    "decision_curve": decision_curve,
}
PROB_FUNCS = ("hosmer_lemeshow", "calibration_table", "decision_curve")
GOOD_Y = [0, 1, 0, 1, 0, 1]
GOOD_P = [0.1, 0.7, 0.3, 0.6, 0.2, 0.9]

BAD_INPUTS = {
    "one class": ([1, 1, 1, 1, 1, 1], GOOD_P, "one class"),
    "nan score": (GOOD_Y, [0.1, np.nan, 0.3, 0.6, 0.2, 0.9], "NaN or infinite"),
    "inf score": (GOOD_Y, [0.1, np.inf, 0.3, 0.6, 0.2, 0.9], "NaN or infinite"),
    "length mismatch": (GOOD_Y, GOOD_P[:5], "one value per patient"),
    "three labels": ([0, 1, 2, 1, 0, 1], GOOD_P, "two classes"),
    "empty": ([], [], "empty"),
    "nan label": ([0, 1, np.nan, 1, 0, 1], GOOD_P, "NaN"),
    "missing label": (["a", "b", None, "a", "b", "a"], GOOD_P, "missing"),
    "2-D scores": (GOOD_Y, np.ones((6, 2)) * 0.5, "1-D"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
@pytest.mark.parametrize("func", list(SCORE_FUNCS))
def test_bad_input_raises_value_error(func, case):
    y, s, match = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=match):
        SCORE_FUNCS[func](y, s)


@pytest.mark.parametrize("func", PROB_FUNCS)
@pytest.mark.parametrize("bad", [1.2, -0.1])
def test_probabilities_outside_unit_interval(func, bad):
    p = list(GOOD_P)
    p[1] = bad
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        SCORE_FUNCS[func](GOOD_Y, p)


def test_non_numeric_scores_and_mixed_labels_raise_type_error():
    with pytest.raises(TypeError, match="numeric"):
        roc_auc_ci(GOOD_Y, ["a", "b", "c", "d", "e", "f"])
    with pytest.raises(TypeError, match="label types"):
        roc_auc_ci(np.array([0, "a", 0, "a", 0, "a"], dtype=object), GOOD_P)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: roc_auc_ci(GOOD_Y, GOOD_P, method="hanley"), "method"),
        (lambda: roc_auc_ci(GOOD_Y, GOOD_P, confidence=95), "confidence"),
        (lambda: roc_auc_ci(GOOD_Y, GOOD_P, method="bootstrap", n_bootstraps=0), "n_bootstraps"),
        (lambda: roc_auc_ci(GOOD_Y, GOOD_P, pos_label=2), "pos_label=2"),
        (lambda: delong_test(GOOD_Y, GOOD_P, GOOD_P, alternative="bigger"), "alternative"),
        (lambda: delong_test([0, 0, 1], [1, 2, 3], [1, 2, 3]), "at least two"),
        (lambda: binary_metrics(GOOD_Y, GOOD_P, threshold="best"), "youden"),
        (lambda: binary_metrics(GOOD_Y, GOOD_P, threshold=float("nan")), "NaN"),
        (lambda: hosmer_lemeshow(GOOD_Y, GOOD_P, n_groups=2), "n_groups"),
        (lambda: hosmer_lemeshow(GOOD_Y, [0.5] * 6), "single distinct"),
        (lambda: calibration_table(GOOD_Y, GOOD_P, n_bins=0), "n_bins"),
        (lambda: calibration_table(GOOD_Y, GOOD_P, strategy="kmeans"), "strategy"),
        (lambda: specificity_score(["a", "a"], ["a", "a"]), "pos_label"),
        (lambda: npv_score([0, 1, 2], [0, 1, 1]), "two classes"),
        (lambda: performance_table({"a": (GOOD_Y, GOOD_P)}, ci_method="x"), "ci_method"),
    ],
)
def test_invalid_parameters(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_threshold_of_wrong_type():
    with pytest.raises(TypeError, match="threshold"):
        binary_metrics(GOOD_Y, GOOD_P, threshold=[0.5])


# ---------------------------------------------------------------------------------------------
# Segmentation metrics and scorers
# ---------------------------------------------------------------------------------------------

SEGMENTATION_METRICS = {
    "dice": dice_score,
    "iou": iou_score,
    "precision": pixel_precision_score,
    "recall": pixel_recall_score,
}


def _box_mask(shape, r0, r1, c0, c1, dtype=np.uint8):
    mask = np.zeros(shape, dtype=dtype)
    mask[r0:r1, c0:c1] = 1
    return mask


def test_segmentation_metrics_by_hand():
    truth = _box_mask((10, 10), 0, 4, 0, 5)  # 20 pixels
    pred = _box_mask((10, 10), 2, 6, 0, 5)  # 20 pixels, 10 of them inside the truth
    # TP = 10, FP = 10, FN = 10
    assert dice_score(truth, pred) == pytest.approx(0.5)
    assert iou_score(truth, pred) == pytest.approx(1 / 3)
    assert pixel_precision_score(truth, pred) == pytest.approx(0.5)
    assert pixel_recall_score(truth, pred) == pytest.approx(0.5)
    big = _box_mask((10, 10), 0, 10, 0, 10)  # TP = 20, FP = 80
    assert pixel_precision_score(truth, big) == pytest.approx(0.2)
    assert pixel_recall_score(truth, big) == pytest.approx(1.0)
    assert dice_score(truth, big) == pytest.approx(40 / 120)
    for metric in SEGMENTATION_METRICS.values():
        assert metric(truth, truth) == 1.0
        assert metric(truth, 1 - truth) == 0.0


def test_segmentation_metrics_agree_with_sklearn_on_pixels():
    rng = np.random.default_rng(0)
    truths = [rng.random((12, 9)) < 0.3 for _ in range(4)]
    preds = [rng.random((12, 9)) < 0.4 for _ in range(4)]
    per_image = {name: m(truths, preds, average=None) for name, m in SEGMENTATION_METRICS.items()}
    for k, (t, p) in enumerate(zip(truths, preds)):
        t, p = t.ravel(), p.ravel()
        assert per_image["dice"][k] == pytest.approx(f1_score(t, p))
        assert per_image["precision"][k] == pytest.approx(precision_score(t, p))
        assert per_image["recall"][k] == pytest.approx(recall_score(t, p))
    dice = per_image["dice"]
    np.testing.assert_allclose(per_image["iou"], dice / (2 - dice))
    assert dice_score(truths, preds) == pytest.approx(dice.mean())  # mean of images, not pooled
    assert per_image["dice"].shape == (4,)


def test_segmentation_empty_masks():
    empty, lesion = np.zeros((5, 5), np.uint8), _box_mask((5, 5), 1, 3, 1, 3)
    for metric in SEGMENTATION_METRICS.values():
        assert metric(empty, empty) == 1.0
        assert metric(empty, empty, empty_score=0.25) == 0.25
        assert metric(empty, lesion) == 0.0 and metric(lesion, empty) == 0.0  # one empty: 0
        # NaN leaves the image out of the mean
        assert metric([lesion, empty], [lesion, empty], empty_score=np.nan) == 1.0
        assert math.isnan(metric(empty, empty, empty_score=np.nan))
        values = metric([lesion, empty], [lesion, empty], average=None, empty_score=np.nan)
        assert values[0] == 1.0 and math.isnan(values[1])


def test_segmentation_input_forms():
    truth = _box_mask((6, 7), 1, 4, 2, 6)
    pred = _box_mask((6, 7), 2, 5, 2, 6)
    expected = dice_score(truth, pred)
    # booleans, label maps, 0/255 masks and float 0/1 masks are the same binary masks
    for t, p in [
        (truth.astype(bool), pred.astype(bool)),
        (truth * 3, pred * 7),
        (truth * 255, pred.astype(np.float32)),
        (truth.astype(np.int64) * -1, pred),
    ]:
        assert dice_score(t, p) == pytest.approx(expected)
    # sequences: list, tuple, object array, pandas Series (a cohort column); own grids each
    other = _box_mask((3, 4), 0, 2, 0, 2)
    for wrap in (list, tuple, pd.Series, lambda v: np.array(v + [None], dtype=object)[:-1]):
        values = dice_score(wrap([truth, other]), wrap([pred, other]), average=None)
        np.testing.assert_allclose(values, [expected, 1.0])
    # 3-D masks (volumes) are one mask each
    volume = np.stack([truth, truth, np.zeros_like(truth)])
    assert dice_score(volume, volume) == 1.0
    assert dice_score(volume, np.stack([truth, pred, truth])) == pytest.approx(
        2 * (12 + 8) / (24 + 36)
    )
    single = dice_score(truth, pred, average=None)
    assert isinstance(single, np.ndarray) and single.shape == (1,)


def test_segmentation_masks_from_files(tmp_path):
    truth = _box_mask((6, 7), 1, 4, 2, 6)
    pred = _box_mask((6, 7), 2, 5, 2, 6)
    paths = [write_mask(tmp_path / "t.png", truth), write_mask(tmp_path / "p.png", pred * 255)]
    assert dice_score([paths[0]], [paths[1]]) == pytest.approx(dice_score(truth, pred))
    assert iou_score(paths[0], pred) == pytest.approx(iou_score(truth, pred))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: dice_score(np.zeros((4, 4)), np.zeros((4, 5))), ValueError, r"shape \(4, 5\)"),
        (
            lambda: dice_score([np.zeros((4, 4))] * 2, [np.zeros((4, 4)), np.zeros((3, 4))]),
            ValueError,
            "mask 1: the predicted mask has shape",
        ),
        (lambda: dice_score([np.zeros((4, 4))] * 2, [np.zeros((4, 4))]), ValueError, "number"),
        (lambda: dice_score(np.zeros((4, 4)), [np.zeros((4, 4))]), ValueError, "number"),
        (lambda: dice_score(np.zeros((4, 4)), np.full((4, 4), 0.7)), ValueError, "Threshold"),
        (lambda: dice_score(np.full((4, 4), np.nan), np.zeros((4, 4))), ValueError, "NaN"),
        (lambda: dice_score(np.zeros(4), np.zeros(4)), ValueError, "2-D or 3-D"),
        (lambda: dice_score([], []), ValueError, "empty"),
        (lambda: dice_score([None], [np.zeros((2, 2))]), ValueError, "missing"),
        (
            lambda: dice_score(np.zeros((2, 2)), np.zeros((2, 2)), average="macro"),
            ValueError,
            "average",
        ),
        (
            lambda: dice_score(np.zeros((2, 2)), np.zeros((2, 2)), empty_score=2),
            ValueError,
            "empty_score",
        ),
        (lambda: dice_score(pd.DataFrame({"m": [1]}), [np.zeros((2, 2))]), TypeError, "column"),
        (lambda: dice_score(np.array([["a"]]), np.zeros((1, 1))), TypeError, "dtype"),
        (lambda: make_segmentation_scorer("hausdorff"), ValueError, "metric"),
        (lambda: make_segmentation_scorer(3), TypeError, "metric"),
    ],
)
def test_segmentation_metric_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


class _ThresholdSegmenter(BaseEstimator):
    """A dummy segmenter: foreground = image above a level (masks on each image's grid)."""

    def __init__(self, mask_col="mask", level=0.5, stack=False):
        self.mask_col = mask_col
        self.level = level
        self.stack = stack

    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def predict(self, X):
        masks = [(image > self.level).astype(np.uint8) for image in X["image"]]
        return np.stack(masks) if self.stack else masks


def _segmentation_cohort(n=8, seed=0):
    """Bright squares (the lesions, intensity ~0.6) on a background at ~0.2, of varying sizes."""
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for k in range(n):
        shape = (16 + k, 20)
        mask = _box_mask(shape, 3, 9 + k % 4, 4, 12)
        image = 0.2 + 0.4 * mask + rng.uniform(-0.05, 0.05, shape)
        images.append(image)
        masks.append(mask)
    frame = pd.DataFrame({"patient_id": [f"P{k}" for k in range(n)]})
    frame["image"] = pd.Series(images + [None], dtype=object)[:-1]
    frame["mask"] = pd.Series(masks + [None], dtype=object)[:-1]
    return frame


def test_segmentation_scorer_with_a_dummy_segmenter():
    X = _segmentation_cohort()
    good, bad = _ThresholdSegmenter(level=0.4).fit(X), _ThresholdSegmenter(level=0.1).fit(X)
    assert dice_scorer(good, X) == 1.0 and iou_scorer(good, X) == 1.0
    expected = dice_score(list(X["mask"]), bad.predict(X))
    assert dice_scorer(bad, X) == pytest.approx(expected) and expected < 0.5
    precision = make_segmentation_scorer("precision")
    recall = make_segmentation_scorer("recall")
    # everything predicted: recall 1, and per image precision = IoU (no false negatives)
    assert recall(bad, X) == 1.0 and precision(bad, X) == pytest.approx(iou_scorer(bad, X))
    # the reference column can be given to the scorer instead of the estimator
    renamed = X.rename(columns={"mask": "lesion"})
    assert make_segmentation_scorer("dice", mask_col="lesion")(good, renamed) == 1.0
    # a callable metric, a loss (negated) and stacked predictions
    loss = make_segmentation_scorer(lambda t, p: 1 - dice_score(t, p), greater_is_better=False)
    assert loss(bad, X) == pytest.approx(expected - 1)
    stacked = _segmentation_cohort(seed=1)
    stacked["image"] = stacked["image"].map(lambda a: a[:16, :20])
    stacked["mask"] = stacked["mask"].map(lambda a: a[:16, :20])
    assert dice_scorer(_ThresholdSegmenter(level=0.4, stack=True).fit(stacked), stacked) == 1.0
    restored = pickle.loads(pickle.dumps(dice_scorer))
    assert restored(bad, X) == dice_scorer(bad, X)
    assert repr(dice_scorer) == "make_segmentation_scorer('dice')"


def test_segmentation_scorer_tunes_a_segmenter_in_grid_search():
    X = _segmentation_cohort()
    search = GridSearchCV(
        _ThresholdSegmenter(), {"level": [0.05, 0.4, 0.7]}, scoring=dice_scorer, cv=2
    ).fit(X)
    assert search.best_params_ == {"level": 0.4}
    assert search.best_score_ == 1.0
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] < 0.6 and scores[2] == 0.0  # all background, or nothing found
    multi = GridSearchCV(
        _ThresholdSegmenter(),
        {"level": [0.05, 0.4]},
        scoring={"dice": dice_scorer, "iou": iou_scorer},
        refit="iou",
        cv=2,
    ).fit(X)
    assert multi.best_params_ == {"level": 0.4}


def test_segmentation_scorer_errors():
    X = _segmentation_cohort(n=3)

    class NoMaskCol(_ThresholdSegmenter):
        def __init__(self, level=0.5):
            self.level = level
            self.stack = False

    with pytest.raises(ValueError, match="mask_col"):
        dice_scorer(NoMaskCol().fit(X), X)
    with pytest.raises(TypeError, match="DataFrame"):
        dice_scorer(_ThresholdSegmenter(), X.to_numpy())

    class OneShort(_ThresholdSegmenter):
        def predict(self, X):
            return super().predict(X)[:-1]

    with pytest.raises(ValueError, match="returned 2 masks for 3 rows"):
        dice_scorer(OneShort(), X)

    class WrongGrid(_ThresholdSegmenter):
        def predict(self, X):
            return [np.zeros((4, 4))] * len(X)

    with pytest.raises(ValueError, match="row 'P0': the predicted mask has shape"):
        dice_scorer(WrongGrid(), X)
    missing = X.copy()
    missing.loc[1, "mask"] = None
    with pytest.raises(ValueError, match="row 'P1', column 'mask'"):
        dice_scorer(_ThresholdSegmenter(), missing)


# ---------------------------------------------------------------------------------------------
# DeLong covariance, unpaired test; case-control decision curves, interventions avoided
# ---------------------------------------------------------------------------------------------
def test_delong_covariance_reproduces_proc_and_the_paired_test():
    markers = ["wfns", "s100b", "ndka"]
    aucs, cov = delong_roc_covariance(ASAH_Y, *[_scores(m) for m in markers])
    np.testing.assert_allclose(aucs, [PROC_THETA[m] for m in markers], rtol=1e-12)
    # pROC's DeLong CI of ndka fixes its variance: ((high - auc) / z_0.975) ** 2.
    low, auc, high = PROC_CI_NDKA
    assert cov[2, 2] == pytest.approx(((high - auc) / stats.norm.ppf(0.975)) ** 2, rel=1e-9)
    np.testing.assert_allclose(cov, cov.T)
    # The paired test is the covariance's contrast, equal to pROC's roc.test.
    for (a, b), (z_ref, p_ref, _) in PROC_ROC_TEST.items():
        i, j = markers.index(a), markers.index(b)
        z = (aucs[i] - aucs[j]) / math.sqrt(cov[i, i] + cov[j, j] - 2 * cov[i, j])
        assert z == pytest.approx(z_ref, rel=1e-10)
        result = delong_test(ASAH_Y, _scores(a), _scores(b))
        np.testing.assert_allclose(result.covariance, cov[np.ix_([i, j], [i, j])], rtol=1e-12)
        assert result.paired and result.pvalue == pytest.approx(p_ref, rel=1e-9)


def test_unpaired_delong_test_sums_the_two_variances():
    rng = np.random.default_rng(3)
    y1, y2 = rng.integers(0, 2, 90), rng.integers(0, 2, 70)
    s1, s2 = rng.normal(size=90) + 1.2 * y1, rng.normal(size=70) + 0.5 * y2
    result = delong_test(y1, s1, s2, paired=False, y_true_2=y2)
    auc1, var1 = delong_roc_variance(y1, s1)
    auc2, var2 = delong_roc_variance(y2, s2)
    assert result.statistic == pytest.approx((auc1 - auc2) / math.sqrt(var1 + var2), rel=1e-12)
    assert result.pvalue == pytest.approx(2 * stats.norm.sf(abs(result.statistic)), rel=1e-12)
    assert not result.paired and result.covariance[0, 1] == 0
    assert (result.auc_1, result.auc_2) == (auc1, auc2)
    # pROC's paired = FALSE on the aSAH curves: the variances of its DeLong CIs, no covariance.
    unpaired = delong_test(ASAH_Y, _scores("wfns"), _scores("s100b"), paired=False)
    paired = delong_test(ASAH_Y, _scores("wfns"), _scores("s100b"))
    assert abs(unpaired.statistic) < abs(paired.statistic)  # positively correlated markers
    with pytest.raises(ValueError, match="paired=False"):
        delong_test(y1, s1, s1, y_true_2=y1)
    with pytest.raises(ValueError, match="one value per patient"):
        delong_test(y1, s1, s2, paired=False)  # s2 is for other patients: give y_true_2


def test_unpaired_delong_test_holds_its_size_under_the_null():
    rng = np.random.default_rng(7)
    pvalues = []
    for _ in range(400):
        y1, y2 = rng.integers(0, 2, 60), rng.integers(0, 2, 60)
        s1, s2 = rng.normal(size=60) + y1, rng.normal(size=60) + y2  # equal true AUCs
        pvalues.append(delong_test(y1, s1, s2, paired=False, y_true_2=y2).pvalue)
    assert 0.02 < np.mean(np.asarray(pvalues) < 0.05) < 0.09


def test_decision_curve_with_a_population_prevalence_for_case_control_data():
    rng = np.random.default_rng(5)
    cases, controls = rng.beta(4, 2, 50), rng.beta(2, 4, 50)  # a 50/50 case-control sample
    y = np.r_[np.ones(50), np.zeros(50)].astype(int)
    p = np.r_[cases, controls]
    # The cohort it stands for: the same controls four times over (prevalence 50 / 250).
    cohort_y = np.r_[np.ones(50), np.zeros(200)].astype(int)
    cohort_p = np.r_[cases, np.tile(controls, 4)]
    thresholds = np.round(np.arange(0, 0.95, 0.05), 2)
    expected = decision_curve(cohort_y, cohort_p, thresholds)
    got = decision_curve(y, p, thresholds, prevalence=0.2)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12, atol=1e-12)
    plain = decision_curve(y, p, thresholds)
    assert not np.allclose(plain["model"], expected["model"])  # the sample's 50 % is wrong
    pd.testing.assert_frame_equal(
        decision_curve(y, p, thresholds, prevalence=0.5), plain, rtol=1e-12, atol=1e-12
    )
    for bad in (0, 1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="prevalence"):
            decision_curve(y, p, prevalence=bad)


def test_net_interventions_avoided_by_hand():
    y = [0, 0, 1, 0, 1, 1]
    p = [0.1, 0.2, 0.3, 0.6, 0.7, 0.9]
    thresholds = [0.0, 0.25, 0.5, 0.8]
    curves = decision_curve(y, p, thresholds)
    avoided = net_interventions_avoided(y, p, thresholds, per=100)
    assert math.isnan(avoided.loc[0, "model"])  # pt = 0: undefined
    for i, t in enumerate(thresholds[1:], start=1):
        nb, nb_all = curves.loc[i, "model"], curves.loc[i, "treat_all"]
        assert avoided.loc[i, "model"] == pytest.approx((nb - nb_all) / (t / (1 - t)) * 100)
    # At pt = 0.5: NB = 2/6 - 1/6 (2 TP, 1 FP of 6) vs treat all 0: 16.67 per 100 patients.
    assert avoided.loc[2, "model"] == pytest.approx(100 / 6)
    per_patient = net_interventions_avoided(y, p, thresholds, per=1)
    np.testing.assert_allclose(per_patient["model"][1:], avoided["model"][1:] / 100)
    with pytest.raises(ValueError, match="per must be"):
        net_interventions_avoided(y, p, per=0)


# --------------------------------------------------------------------------------------------
# Calibration intercept / slope / Brier, smooth calibration curve
# --------------------------------------------------------------------------------------------
from scipy.optimize import brentq  # noqa: E402
from scipy.special import expit, logit  # noqa: E402
from sklearn.metrics import brier_score_loss, cohen_kappa_score, roc_curve  # noqa: E402

from sklearn_alnm.metrics import (  # noqa: E402
    calibration_metrics,
    cohen_kappa,
    integrated_discrimination_improvement,
    net_reclassification_improvement,
    roc_curve_ci,
    smooth_calibration_curve,
)


def _calibrated_sample(n, seed, power=1.0):
    """Outcomes drawn from p (well calibrated); the returned risks are p's logit x power."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.03, 0.97, n)
    y = (rng.uniform(size=n) < p).astype(int)
    return y, expit(power * logit(p))


def test_calibration_metrics_agree_with_independent_fits():
    y, p = _calibrated_sample(600, 1, power=1.7)
    m = calibration_metrics(y, p)
    lp = logit(p)
    # slope: the unpenalised logistic regression of y on lp (scikit-learn's solver)
    slope = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(lp[:, None], y).coef_[0, 0]
    assert m["slope"] == pytest.approx(slope, rel=1e-4)
    # intercept with lp as offset: the MLE solves sum(y) = sum(expit(a + lp))
    a = brentq(lambda a: y.sum() - expit(a + lp).sum(), -5, 5, xtol=1e-12)
    assert m["intercept"] == pytest.approx(a, abs=1e-6)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p))
    prevalence = y.mean()
    assert m["brier_scaled"] == pytest.approx(1 - m["brier"] / (prevalence * (1 - prevalence)))
    assert m["slope_low"] < m["slope"] < m["slope_high"]
    assert m["intercept_low"] < m["intercept"] < m["intercept_high"]


def test_calibration_metrics_detect_over_and_under_confidence():
    y, p = _calibrated_sample(3000, 2)
    fine = calibration_metrics(y, p)
    assert fine["slope_low"] < 1 < fine["slope_high"]
    assert fine["intercept_low"] < 0 < fine["intercept_high"]
    assert calibration_metrics(y, expit(2 * logit(p)))["slope"] == pytest.approx(0.5, abs=0.05)
    assert calibration_metrics(y, expit(0.5 * logit(p)))["slope"] == pytest.approx(2.0, abs=0.2)
    # risks shifted up: the intercept says they are over-estimated
    assert calibration_metrics(y, expit(logit(p) + 1))["intercept_high"] < 0


def test_calibration_metrics_string_labels_and_separation():
    y, p = _calibrated_sample(300, 3)
    labels = np.where(y == 1, "N+", "N0")
    with pytest.raises(ValueError, match="pos_label"):
        calibration_metrics(labels, p)
    assert calibration_metrics(labels, p, pos_label="N+") == pytest.approx(
        calibration_metrics(y, p)
    )
    # separated classes: no finite slope, and no warning escapes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        separated = calibration_metrics([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.3, 0.7, 0.8, 1.0])
    assert math.isnan(separated["slope"]) and math.isnan(separated["intercept"])
    assert separated["brier"] == pytest.approx(
        brier_score_loss([0] * 3 + [1] * 3, [0.1, 0.2, 0.3, 0.7, 0.8, 1.0])
    )


def test_smooth_calibration_curve_line_is_the_recalibration_fit():
    y, p = _calibrated_sample(400, 4, power=1.5)
    grid = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    curve = smooth_calibration_curve(y, p, grid=grid, df=1)
    fit = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(logit(p)[:, None], y)
    expected = fit.predict_proba(logit(grid)[:, None])[:, 1]
    np.testing.assert_allclose(curve["observed"], expected, rtol=1e-4)
    assert curve.attrs["df"] == 1
    assert np.all((curve["low"] <= curve["observed"]) & (curve["observed"] <= curve["high"]))


def test_smooth_calibration_curve_follows_the_truth():
    # well calibrated: the band holds the diagonal nearly everywhere
    y, p = _calibrated_sample(3000, 5)
    curve = smooth_calibration_curve(y, p)
    assert curve.attrs["df"] == 4
    inside = (curve["low"] <= curve["predicted"]) & (curve["predicted"] <= curve["high"])
    assert inside.mean() >= 0.9
    # a non-linear miscalibration (true risk = p**2 reported as p) is recovered by the spline
    rng = np.random.default_rng(6)
    p = rng.uniform(0.02, 0.98, 4000)
    y = (rng.uniform(size=4000) < p**2).astype(int)
    curve = smooth_calibration_curve(y, p, grid=[0.3, 0.6, 0.9])
    np.testing.assert_allclose(curve["observed"], [0.09, 0.36, 0.81], atol=0.06)
    assert np.all(curve["low"] <= [0.09, 0.36, 0.81]) and np.all(
        curve["high"] >= [0.09, 0.36, 0.81]
    )


def test_smooth_calibration_curve_small_cohort_and_errors():
    y, p = _calibrated_sample(40, 7)
    curve = smooth_calibration_curve(y, p)
    assert curve.attrs["df"] == 1  # fewer than 20 patients in the smaller class
    assert curve["predicted"].between(p.min(), p.max()).all()
    assert ((curve["low"] >= 0) & (curve["high"] <= 1)).all()
    with pytest.raises(ValueError, match="df"):
        smooth_calibration_curve(y, p, df=0)
    with pytest.raises(ValueError, match="grid"):
        smooth_calibration_curve(y, p, grid=[1.5])
    separated = smooth_calibration_curve([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert separated["observed"].isna().all()


# --------------------------------------------------------------------------------------------
# NRI and IDI
# --------------------------------------------------------------------------------------------
def test_nri_category_free_counts_and_pencina_se():
    y = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    old = np.array([0.4, 0.5, 0.6, 0.3, 0.2, 0.5, 0.4, 0.3, 0.6, 0.2, 0.7])
    new = np.array([0.6, 0.7, 0.5, 0.5, 0.2, 0.3, 0.2, 0.4, 0.5, 0.1, 0.7])
    result = net_reclassification_improvement(y, old, new)
    # events: up 3 (0.4->0.6, 0.5->0.7, 0.3->0.5), down 1, unchanged 1 of 5
    # non-events: down 4 (0.5, 0.4, 0.6, 0.2), up 1 (0.3->0.4), unchanged 1 of 6
    assert result.events == pytest.approx((3 - 1) / 5)
    assert result.nonevents == pytest.approx((4 - 1) / 6)
    assert result.estimate == pytest.approx(2 / 5 + 3 / 6)
    se = math.sqrt((3 + 1) / 25 - 2**2 / 125 + (1 + 4) / 36 - 3**2 / 216)
    z = stats.norm.ppf(0.975)
    assert result.low == pytest.approx(result.estimate - z * se)
    assert result.high == pytest.approx(result.estimate + z * se)
    assert result.pvalue == pytest.approx(2 * stats.norm.sf(result.estimate / se))
    # swapping the models negates the NRI
    assert net_reclassification_improvement(y, new, old).estimate == pytest.approx(-result.estimate)


def test_nri_categorical_uses_risk_categories():
    y = [1, 1, 1, 0, 0, 0]
    old = [0.05, 0.15, 0.25, 0.35, 0.15, 0.05]
    new = [0.15, 0.18, 0.35, 0.25, 0.12, 0.08]
    # categories [0, .1), [.1, .3), [.3, 1]: events 0->1, 1->1, 1->2 (up 2); non-events
    # 2->1 (down 1), 1->1, 0->0
    result = net_reclassification_improvement(y, old, new, cutoffs=[0.1, 0.3])
    assert result.events == pytest.approx(2 / 3)
    assert result.nonevents == pytest.approx(1 / 3)
    # a probability equal to a cutoff belongs to the upper category
    assert (
        net_reclassification_improvement([1, 0], [0.09, 0.5], [0.1, 0.5], cutoffs=[0.1]).events == 1
    )
    with pytest.raises(ValueError, match="cutoffs"):
        net_reclassification_improvement(y, old, new, cutoffs=[0.3, 0.1])
    with pytest.raises(ValueError, match="cutoffs"):
        net_reclassification_improvement(y, old, new, cutoffs=[1.0])


def test_idi_is_the_change_in_discrimination_slope():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 200)
    old = np.clip(0.5 + 0.1 * (y - 0.5) + rng.normal(0, 0.1, 200), 0, 1)
    new = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.1, 200), 0, 1)
    result = integrated_discrimination_improvement(y, old, new)

    def slope(p):
        return p[y == 1].mean() - p[y == 0].mean()

    assert result.estimate == pytest.approx(slope(new) - slope(old))
    d = new - old
    se = math.sqrt(d[y == 1].var(ddof=1) / (y == 1).sum() + d[y == 0].var(ddof=1) / (y == 0).sum())
    assert result.high - result.low == pytest.approx(2 * stats.norm.ppf(0.975) * se)
    assert result.pvalue < 1e-6
    labels = np.where(y == 1, "N+", "N0")
    assert integrated_discrimination_improvement(labels, old, new, pos_label="N+") == pytest.approx(
        result
    )
    same = integrated_discrimination_improvement(y, old, old)
    assert same.estimate == 0 and math.isnan(same.pvalue)


# --------------------------------------------------------------------------------------------
# Cohen's kappa
# --------------------------------------------------------------------------------------------
def test_cohen_kappa_matches_sklearn_and_the_asymptotic_se():
    # the 2 x 2 table [[20, 5], [10, 15]]: kappa 0.4, ASE 0.1270 (Fleiss, Cohen & Everitt)
    a = np.r_[np.zeros(25), np.ones(25)].astype(int)
    b = np.r_[np.zeros(20), np.ones(5), np.zeros(10), np.ones(15)].astype(int)
    result = cohen_kappa(a, b)
    assert result.kappa == pytest.approx(cohen_kappa_score(a, b))
    assert result.kappa == pytest.approx(0.4)
    assert (result.high - result.low) / (2 * stats.norm.ppf(0.975)) == pytest.approx(
        0.1270, abs=5e-5
    )
    assert result.pvalue == pytest.approx(0.0039, abs=5e-5)
    assert result.agreement == pytest.approx(35 / 50) and result.n == 50
    assert cohen_kappa(a.astype(bool), b.astype(bool)) == result
    nobody = cohen_kappa([1, 1, 1], [1, 1, 1])
    assert math.isnan(nobody.kappa) and nobody.agreement == 1.0
    with pytest.raises(ValueError, match="0/1"):
        cohen_kappa([0, 2], [0, 1])


# --------------------------------------------------------------------------------------------
# ROC confidence band
# --------------------------------------------------------------------------------------------
def test_roc_curve_ci_sensitivity_is_the_drawn_curve():
    rng = np.random.default_rng(9)
    y = np.r_[np.zeros(50), np.ones(30)].astype(int)
    score = np.round(y + rng.normal(size=80), 1)  # ties: vertical and diagonal segments
    band = roc_curve_ci(y, score, n_bootstraps=200, random_state=0)
    fpr, tpr, _ = roc_curve(y, score, drop_intermediate=False)
    # the drawn polygon at a fpr: between vertices, linear; check at midpoints of each segment
    for k in range(len(fpr) - 1):
        if fpr[k + 1] > fpr[k]:
            mid = (fpr[k] + fpr[k + 1]) / 2
            expected = (tpr[k] + tpr[k + 1]) / 2
            got = roc_curve_ci(y, score, specificities=[1 - mid], n_bootstraps=1, random_state=0)
            assert got["sensitivity"].iloc[0] == pytest.approx(expected)
    assert band["specificity"].is_monotonic_decreasing
    assert band["sensitivity"].iloc[-1] == 1.0 and band["low"].iloc[-1] == 1.0
    assert np.all(band["low"] <= band["sensitivity"] + 1e-12)
    assert np.all(band["sensitivity"] <= band["high"] + 1e-12)
    again = roc_curve_ci(y, score, n_bootstraps=200, random_state=0)
    pd.testing.assert_frame_equal(band, again)


def test_roc_curve_ci_narrows_with_more_patients():
    def width(n, seed):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 2, n)
        s = y + rng.normal(size=n)
        band = roc_curve_ci(y, s, specificities=[0.8], n_bootstraps=400, random_state=0)
        return float(band["high"].iloc[0] - band["low"].iloc[0])

    assert width(1600, 1) < 0.6 * width(100, 1)
