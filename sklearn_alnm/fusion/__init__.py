"""Multimodal fusion: modality signatures, feature concatenation (pre-fusion), probability
stacking (post-fusion), and patient-grouped cross-validation read from the cohort."""

from ._builders import make_meta_learner, make_post_fusion, make_signature
from ._split import GroupColumnKFold

__all__ = ["GroupColumnKFold", "make_meta_learner", "make_post_fusion", "make_signature"]
