"""Sphinx configuration of the sklearn_alnm documentation (``make docs``).

The build works offline: cross-references to Python, NumPy, pandas and scikit-learn use
intersphinx only when ``ALNM_DOCS_INTERSPHINX=1`` (it downloads their inventories). The examples
gallery runs every ``examples/gallery/plot_*.py`` at build time; ``ALNM_DOCS_PLOT=0`` lists them
without running them.
"""

import os
import warnings

import sklearn_alnm

project = "sklearn_alnm"
author = "the sklearn_alnm developers"
copyright = "2026, the sklearn_alnm developers"
release = sklearn_alnm.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
if os.environ.get("ALNM_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "pandas": ("https://pandas.pydata.org/docs", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
    }

autosummary_generate = True
templates_path = ["_templates"]
# a class page documents the class's own methods; those inherited from scikit-learn or torch
# (score, set_params, the metadata-routing set_*_request) are documented there
autodoc_default_options = {"members": True}
autodoc_inherit_docstrings = False
# the numpydoc sections document every type; numpy's ArrayLike union would swamp signatures
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
# names that are types in docstrings, not cross-references
numpydoc_xref_param_type = False

sphinx_gallery_conf = {
    "examples_dirs": "../examples/gallery",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "plot_gallery": os.environ.get("ALNM_DOCS_PLOT", "1") != "0",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}

html_theme = "pydata_sphinx_theme"
html_title = f"sklearn_alnm {release}"
html_theme_options = {"navigation_with_keys": False}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]
nitpicky = False


def _skip_inherited(app, what, name, obj, skip, options):
    """Leave out members that scikit-learn or torch generate or define (set_*_request)."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_inherited)


# matplotlib in the gallery draws on a file, never on a screen
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings("ignore", category=UserWarning, message="Matplotlib is currently using agg")
