"""Data sets: a synthetic multimodal ALNM cohort generator and the BUSI ultrasound loader.

:func:`make_alnm_cohort` draws a cohort with every modality of the data model (clinical
variables, ultrasound image and mask, CC/MLO mammograms, H&E pathology, ultrasound video and a
bag of tumour / node images), each carrying a partly independent, learnable signal about node
metastasis. :func:`load_busi` indexes the public BUSI breast-ultrasound images and masks.
"""

from ._busi import load_busi
from ._synthetic import make_alnm_cohort

__all__ = ["load_busi", "make_alnm_cohort"]
