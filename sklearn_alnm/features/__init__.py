"""Feature transformers: radiomics (pyradiomics) and deep features (torchvision backbones)
computed from the image and mask columns of a cohort.

Exports are resolved lazily (PEP 562), so parallel radiomics workers that import a private
module of this package do not pay for scikit-learn or torch imports they do not use.
"""

import importlib

_EXPORTS = {
    "BaseCohortFeatures": "._base",
    "DeepFeatures": "._deep",
    "RadiomicsFeatures": "._radiomics",
    "make_multiview_features": "._multiview",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
