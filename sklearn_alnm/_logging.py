"""The package logger.

Every module logs through a child of the ``"sklearn_alnm"`` logger, so an application controls
the whole library with ``logging.getLogger("sklearn_alnm").setLevel(...)``. As a library we only
attach a :class:`logging.NullHandler`; :func:`enable_console_logging` is a convenience for
scripts and the command line.
"""

import logging

logger = logging.getLogger("sklearn_alnm")
logger.addHandler(logging.NullHandler())


def get_logger(name):
    """Return the package logger's child for module ``name`` (e.g. ``__name__``).

    Parameters
    ----------
    name : str
        Dotted module name. Names outside the package are nested under ``sklearn_alnm``.

    Returns
    -------
    logging.Logger
    """
    if name == "sklearn_alnm" or name.startswith("sklearn_alnm."):
        return logging.getLogger(name)
    return logger.getChild(name)


def enable_console_logging(level=logging.INFO):
    """Send the package's log records to stderr with a compact format.

    Calling it twice does not duplicate the handler.

    Parameters
    ----------
    level : int or str, default=logging.INFO
        Level applied to the package logger.

    Returns
    -------
    logging.Logger
        The package logger.
    """
    if not any(getattr(h, "_alnm_console", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._alnm_console = True
        logger.addHandler(handler)
    logger.setLevel(level)
    return logger


def silence_pyradiomics(level=logging.ERROR):
    """Show only pyradiomics' messages of ``level`` and above (its per-image warnings, e.g.
    "GLCM is symmetrical", go to stderr by default); nothing happens if it is not installed.

    Worker processes of :class:`~sklearn_alnm.features.RadiomicsFeatures` take the level over.

    Parameters
    ----------
    level : int, default=logging.ERROR
        Level of pyradiomics' stderr handler (``radiomics.setVerbosity``).
    """
    try:
        import radiomics
    except ImportError:
        return
    radiomics.setVerbosity(level)
