"""scikit-learn estimators for predicting axillary lymph node metastasis in breast cancer.

The library turns published deep-learning and radiomics studies of axillary / sentinel lymph node
metastasis (ALNM) into scikit-learn estimators that consume a *cohort* DataFrame (one row per
patient; clinical columns plus image, mask, video, bag and pathology references).

Subpackages
-----------
io
    Readers for images, masks, videos and cohort manifests.
datasets
    Synthetic cohorts (:func:`~sklearn_alnm.datasets.make_alnm_cohort`) and the BUSI loader.
metrics
    Clinical statistics: AUC with DeLong / bootstrap CI, DeLong test, binary metrics at a
    threshold, Hosmer-Lemeshow, calibration and decision curves.
utils
    Device resolution, seeding and input-validation helpers shared by every estimator.
"""

from ._logging import logger

__version__ = "0.1.0"

__all__ = ["__version__", "logger"]
