"""Sphinx configuration of the sklearn_alnm documentation (``pip install -e '.[docs]'``)."""

import sklearn_alnm

project = "sklearn_alnm"
author = "sklearn_alnm developers"
release = sklearn_alnm.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
]
autosummary_generate = True
numpydoc_show_class_members = False
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "pandas": ("https://pandas.pydata.org/docs", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
}
html_theme = "pydata_sphinx_theme"
exclude_patterns = ["_build"]
