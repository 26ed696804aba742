"""Multimodal fusion: modality signatures, feature concatenation (pre-fusion), probability
stacking (post-fusion), signature scores for combined models (nomograms), and patient-grouped
cross-validation read from the cohort."""

from ._builders import make_meta_learner, make_post_fusion, make_signature
from ._scores import SignatureScores
from ._split import GroupColumnKFold

__all__ = [
    "GroupColumnKFold",
    "SignatureScores",
    "make_meta_learner",
    "make_post_fusion",
    "make_signature",
]
