"""Paper-style study reports: performance tables, ROC / calibration / decision curves, HTML.

:class:`StudyReport` takes fitted models and the cohorts of a study (training first, then
validation and test cohorts) and produces what the ALNM papers publish: the performance table
(AUC with DeLong CI, accuracy, sensitivity, specificity, PPV, NPV, F1 at a threshold fixed on
the training cohort, Hosmer-Lemeshow p), pairwise DeLong tests, the comparison with
radiologists' calls (McNemar), ROC curves with reader operating points, calibration curves,
decision curves, confusion matrices and nomograms, gathered into one HTML page. Every
statistic comes from :mod:`sklearn_alnm.metrics`.
"""

from ._report import StudyReport

__all__ = ["StudyReport"]
