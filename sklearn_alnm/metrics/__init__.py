"""Clinical statistics for prediction models: discrimination, thresholds, calibration, utility.

Discrimination
    :func:`roc_auc_ci` (AUC with DeLong or stratified-bootstrap CI, as R pROC),
    :func:`roc_curve_ci` (bootstrap band of the ROC curve, as pROC's ``ci.se``),
    :func:`delong_roc_variance`, :func:`delong_roc_covariance` (the DeLong covariance matrix
    of several AUCs), :func:`delong_test` (paired or unpaired DeLong test of two AUCs).
Classification at a threshold
    :func:`youden_threshold`, :func:`binary_metrics` (accuracy, sensitivity, specificity, PPV,
    NPV, F1), the label-based scores :func:`sensitivity_score`, :func:`specificity_score`,
    :func:`ppv_score`, :func:`npv_score` and their scikit-learn scorers.
Calibration
    :func:`hosmer_lemeshow` (as R ResourceSelection::hoslem.test), :func:`calibration_table`,
    :func:`calibration_metrics` (calibration intercept and slope, Brier score) and
    :func:`smooth_calibration_curve` (flexible calibration curve with a confidence band).
Reclassification
    :func:`net_reclassification_improvement` and :func:`integrated_discrimination_improvement`
    (Pencina et al., as R PredictABEL).
Agreement
    :func:`cohen_kappa` (Cohen's kappa of two raters' calls with its interval).
Clinical utility
    :func:`decision_curve` (net benefit, as R dcurves::dca, with a population prevalence for
    case-control data), :func:`net_interventions_avoided`.
Reporting
    :func:`performance_table` and :func:`format_performance_table`.
Segmentation
    :func:`dice_score`, :func:`iou_score`, :func:`pixel_precision_score`,
    :func:`pixel_recall_score` (per-image overlap of predicted and reference lesion masks,
    averaged over the images) and the segmenter scorers :func:`make_segmentation_scorer`,
    :data:`dice_scorer`, :data:`iou_scorer`.

Conventions shared by every function: ``y_true`` may use any two labels (the positive class is
``pos_label``, which is required unless the labels are 0/1, -1/1 or booleans; it is never
guessed from the sorted order, which would make "N0" positive among "N0" / "N+"); higher
scores mean "more likely positive" and curves are never flipped; invalid input raises
``ValueError`` (or ``TypeError`` for a wrong type) saying what was expected. The
segmentation metrics take masks instead of labels (one mask or a sequence of masks, any
non-zero value being foreground).
"""

from ._agreement import KappaResult, cohen_kappa
from ._calibration import (
    HosmerLemeshowResult,
    calibration_metrics,
    calibration_table,
    hosmer_lemeshow,
    smooth_calibration_curve,
)
from ._decision_curve import decision_curve, net_interventions_avoided
from ._reclassification import (
    ReclassificationResult,
    integrated_discrimination_improvement,
    net_reclassification_improvement,
)
from ._roc import (
    DeLongTestResult,
    RocAucCI,
    delong_roc_covariance,
    delong_roc_variance,
    delong_test,
    roc_auc_ci,
    roc_curve_ci,
)
from ._segmentation import (
    SegmentationScorer,
    dice_score,
    dice_scorer,
    iou_score,
    iou_scorer,
    make_segmentation_scorer,
    pixel_precision_score,
    pixel_recall_score,
)
from ._table import format_performance_table, performance_table
from ._threshold import (
    binary_metrics,
    npv_score,
    npv_scorer,
    ppv_score,
    ppv_scorer,
    sensitivity_score,
    sensitivity_scorer,
    specificity_score,
    specificity_scorer,
    youden_threshold,
)

__all__ = [
    "DeLongTestResult",
    "HosmerLemeshowResult",
    "KappaResult",
    "ReclassificationResult",
    "RocAucCI",
    "SegmentationScorer",
    "binary_metrics",
    "calibration_metrics",
    "calibration_table",
    "cohen_kappa",
    "decision_curve",
    "delong_roc_covariance",
    "delong_roc_variance",
    "delong_test",
    "dice_score",
    "dice_scorer",
    "format_performance_table",
    "hosmer_lemeshow",
    "integrated_discrimination_improvement",
    "iou_score",
    "iou_scorer",
    "make_segmentation_scorer",
    "net_interventions_avoided",
    "net_reclassification_improvement",
    "npv_score",
    "npv_scorer",
    "performance_table",
    "pixel_precision_score",
    "pixel_recall_score",
    "ppv_score",
    "ppv_scorer",
    "roc_auc_ci",
    "roc_curve_ci",
    "sensitivity_score",
    "sensitivity_scorer",
    "smooth_calibration_curve",
    "specificity_score",
    "specificity_scorer",
    "youden_threshold",
]
