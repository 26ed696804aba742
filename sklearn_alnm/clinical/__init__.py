"""Clinical models: the clinical signature of the studies and the columns it uses."""

from ._pipeline import ClinicalColumns, make_clinical_pipeline, make_clinical_preprocessor

__all__ = ["ClinicalColumns", "make_clinical_pipeline", "make_clinical_preprocessor"]
