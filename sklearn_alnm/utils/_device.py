"""Resolution of the ``device`` parameter shared by the neural estimators."""

from .._logging import get_logger

_log = get_logger(__name__)


def resolve_device(device: str = "auto") -> str:
    """Turn a ``device`` parameter into a concrete torch device string.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"} or torch.device, default="auto"
        ``"auto"`` picks ``"cuda"`` when a CUDA device is usable and ``"cpu"`` otherwise.
        An explicit CUDA or MPS request on a machine without one raises.

    Returns
    -------
    str
        For example ``"cpu"`` or ``"cuda:0"``.

    Raises
    ------
    ValueError
        If the string is not a device name, or names an accelerator that is not available.

    Examples
    --------
    >>> from sklearn_alnm.utils import resolve_device
    >>> resolve_device("cpu")
    'cpu'
    """
    import torch

    if device is None or (isinstance(device, str) and device.lower() == "auto"):
        resolved = "cuda" if torch.cuda.is_available() else "cpu"
        _log.debug("device='auto' resolved to %r", resolved)
        return resolved
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'; got {device!r}."
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was requested but CUDA is not available here.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but only {torch.cuda.device_count()} "
                "CUDA device(s) exist."
            )
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError(f"device={device!r} was requested but MPS is not available here.")
    elif dev.type != "cpu":
        raise ValueError(f"Unsupported device type {dev.type!r} (from device={device!r}).")
    return str(dev)
