"""Clinical models: the clinical signature of the studies, stepwise logistic regression,
nomograms, and the papers' baseline and odds-ratio tables."""

from ._nomogram import Nomogram
from ._pipeline import (
    ClinicalColumns,
    ClinicalPreprocessor,
    make_clinical_pipeline,
    make_clinical_preprocessor,
)
from ._stepwise import SeparationWarning, StepwiseLogisticRegression
from ._tables import baseline_table, odds_ratio_table

__all__ = [
    "ClinicalColumns",
    "ClinicalPreprocessor",
    "Nomogram",
    "SeparationWarning",
    "StepwiseLogisticRegression",
    "baseline_table",
    "make_clinical_pipeline",
    "make_clinical_preprocessor",
    "odds_ratio_table",
]
