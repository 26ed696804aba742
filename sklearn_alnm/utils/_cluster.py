"""Running the library's parallel work on a cluster: joblib's Dask and Ray backends.

Every parallel loop of the library (radiomics rows, the signatures of
:class:`~sklearn_alnm.fusion.SignatureScores`, scikit-learn's ``GridSearchCV`` and
``cross_val_score`` over our estimators) goes through :class:`joblib.Parallel`, so it runs on
whatever backend :func:`joblib.parallel_config` names. :func:`parallel_backend` opens the
backend from a small specification (as ``alnm run``'s ``parallel:`` setting), checking first
that the cluster answers, so a missing or unreachable scheduler is one clear error before any
work starts.
"""

import contextlib
import numbers
from collections.abc import Iterator, Mapping
from typing import Any

import joblib

#: Backends a specification may name, and what each needs installed.
BACKENDS = {
    "loky": None,
    "threading": None,
    "dask": "dask[distributed]",
    "ray": "ray",
}
_KEYS = {"backend", "scheduler", "n_jobs", "timeout", "address"}


class ClusterUnavailableError(RuntimeError):
    """The cluster a parallel specification names cannot be reached or used."""


def check_parallel_spec(spec: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """Validate a parallel specification and return it with its defaults.

    Parameters
    ----------
    spec : mapping, str or None
        ``{"backend": "dask", "scheduler": "tcp://host:8786", "n_jobs": -1, "timeout": 10}``;
        a string is the backend name alone; ``None`` means joblib's default (``loky``).
        ``scheduler`` (Dask) is the address of a running ``dask.distributed`` scheduler;
        without it a local cluster is started with one worker per core. ``address`` (Ray)
        is passed to :func:`ray.init` (``"auto"`` joins a running Ray cluster; without it a
        local Ray instance starts). ``n_jobs`` is the number of parallel tasks (default -1:
        as many as the cluster has workers); ``timeout`` the seconds to wait for the
        scheduler (default 10).

    Returns
    -------
    dict
        Keys ``backend``, ``scheduler``, ``address``, ``n_jobs``, ``timeout``.

    Raises
    ------
    ValueError
        For an unknown backend or key, or invalid values; the message names the setting.
    """
    if spec is None:
        spec = {"backend": "loky"}
    elif isinstance(spec, str):
        spec = {"backend": spec}
    if not isinstance(spec, Mapping):
        raise ValueError(
            f"parallel: expected a mapping such as {{backend: dask, scheduler: "
            f"'tcp://host:8786'}} or a backend name; got {spec!r}."
        )
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        raise ValueError(f"parallel: unknown setting(s) {unknown}; allowed: {sorted(_KEYS)}.")
    backend = spec.get("backend", "loky")
    if backend not in BACKENDS:
        raise ValueError(f"parallel: backend must be one of {sorted(BACKENDS)}; got {backend!r}.")
    scheduler, address = spec.get("scheduler"), spec.get("address")
    if scheduler is not None and backend != "dask":
        raise ValueError("parallel: 'scheduler' is a Dask setting; use backend: dask.")
    if address is not None and backend != "ray":
        raise ValueError("parallel: 'address' is a Ray setting; use backend: ray.")
    for name, value in (("scheduler", scheduler), ("address", address)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"parallel: {name} must be an address string; got {value!r}.")
    n_jobs = spec.get("n_jobs", -1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(f"parallel: n_jobs must be a non-zero integer; got {n_jobs!r}.")
    timeout = spec.get("timeout", 10)
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or timeout <= 0:
        raise ValueError(f"parallel: timeout must be a positive number; got {timeout!r}.")
    return {
        "backend": backend,
        "scheduler": scheduler,
        "address": address,
        "n_jobs": int(n_jobs),
        "timeout": float(timeout),
    }


#: Dask's nanny exports ``MALLOC_TRIM_THRESHOLD_=65536`` to its workers by default. Setting
#: any malloc threshold turns off glibc's dynamic mmap threshold, so every large numpy
#: temporary is mapped and unmapped afresh: a numpy + Python task ran 1.45x slower with the
#: variable than without it (``benchmarks/bench_cluster.py``). The local cluster started here
#: leaves glibc's defaults, as loky's workers have them.
_LOCAL_DASK_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


def _local_dask_client():
    """A client of a new local cluster: one single-threaded worker process per core."""
    import dask
    from distributed import Client

    with dask.config.set(_LOCAL_DASK_CONFIG):
        return Client(processes=True, threads_per_worker=1, dashboard_address=None)


def _signal_handlers():
    import signal

    return {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore_signal_handlers(handlers):
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        for sig, handler in handlers.items():
            if handler is not None:
                signal.signal(sig, handler)


def _require(backend):
    package = BACKENDS[backend]
    module = {"dask": "distributed", "ray": "ray"}.get(backend)
    if module is None:
        return
    try:
        __import__(module)
    except ImportError:
        raise ClusterUnavailableError(
            f"parallel backend {backend!r} needs {package}: pip install '{package}'."
        ) from None


@contextlib.contextmanager
def parallel_backend(spec: Mapping[str, Any] | str | None = None) -> Iterator[dict[str, Any]]:
    """Run the ``with`` block's joblib work on the backend ``spec`` names.

    Connects first (a Dask client to ``scheduler``, or a local Dask cluster; Ray through
    :func:`ray.util.joblib.register_ray`), so an unreachable cluster fails here in one line,
    before any work; then :func:`joblib.parallel_config` makes every
    :class:`joblib.Parallel` inside the block (the library's and scikit-learn's) use it with
    ``n_jobs`` tasks at a time. What the block computes does not depend on the backend.

    Parameters
    ----------
    spec : mapping, str or None, default=None
        See :func:`check_parallel_spec`.

    Yields
    ------
    dict
        The checked specification, plus ``"workers"`` (the cluster's worker count, when
        known) and ``"dashboard"`` (Dask's dashboard link, when there is one).

    Raises
    ------
    ValueError
        For an invalid specification.
    ClusterUnavailableError
        When the backend's package is missing or its cluster does not answer within
        ``timeout`` seconds.

    Examples
    --------
    >>> from sklearn_alnm.utils import parallel_backend
    >>> with parallel_backend({"backend": "threading", "n_jobs": 2}) as used:
    ...     used["backend"]
    'threading'
    """
    spec = check_parallel_spec(spec)
    backend = spec["backend"]
    _require(backend)
    info = dict(spec, workers=None, dashboard=None)
    with contextlib.ExitStack() as stack:
        if backend == "dask":
            from distributed import Client

            try:
                if spec["scheduler"] is not None:
                    client = Client(spec["scheduler"], timeout=spec["timeout"])
                else:
                    client = _local_dask_client()
            except (OSError, TimeoutError) as exc:
                where = spec["scheduler"] or "a local cluster"
                raise ClusterUnavailableError(
                    f"cannot reach the Dask scheduler at {where} within "
                    f"{spec['timeout']:g} s ({type(exc).__name__}: {exc})".replace("\n", " ")
                ) from None
            stack.enter_context(client)
            info["workers"] = len(client.scheduler_info().get("workers", {}))
            info["dashboard"] = getattr(client, "dashboard_link", None)
        elif backend == "ray":
            import ray
            from ray.util.joblib import register_ray

            try:
                if not ray.is_initialized():
                    # ray.init installs its own SIGTERM / SIGINT handlers in this process and
                    # ray.shutdown leaves them: put the caller's back afterwards
                    stack.callback(_restore_signal_handlers, _signal_handlers())
                    ray.init(address=spec["address"], log_to_driver=False)
                    stack.callback(ray.shutdown)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ClusterUnavailableError(
                    f"cannot connect to Ray at {spec['address'] or 'a local instance'} "
                    f"({type(exc).__name__}: {exc})".replace("\n", " ")
                ) from None
            register_ray()
            info["workers"] = int(ray.cluster_resources().get("CPU", 0)) or None
        stack.enter_context(joblib.parallel_config(backend=backend, n_jobs=spec["n_jobs"]))
        yield info
