"""The public API carries type hints that resolve (``typing.get_type_hints``).

Covered: every public function of every subpackage, the recipes and the command line; every
public method of the public classes (estimators, the report, the feature cache), except
``__init__`` (estimator parameters are documented and validated in ``fit``, as in
scikit-learn). Not covered yet: the torch modules of ``sklearn_alnm.nn``, the input-reading
classes of ``sklearn_alnm.inputs`` and the skorch training-loop overrides of
``AcceleratedNet``.
"""

import importlib
import inspect
import pkgutil
import typing

import pytest

import sklearn_alnm

SUBPACKAGES = sorted(
    f"sklearn_alnm.{m.name}"
    for m in pkgutil.iter_modules(sklearn_alnm.__path__)
    if not m.name.startswith("_") and m.name != "nn"
)
NOT_COVERED_CLASSES = {"AcceleratedNet"}


def _public_callables():
    seen = set()
    for name in SUBPACKAGES:
        module = importlib.import_module(name)
        names = getattr(module, "__all__", None) or [
            n for n in dir(module) if not n.startswith("_")
        ]
        for attr in names:
            obj = getattr(module, attr)
            if inspect.isfunction(obj) and obj.__module__.startswith("sklearn_alnm"):
                if obj not in seen:
                    seen.add(obj)
                    yield f"{name}.{attr}", obj
            elif inspect.isclass(obj) and obj.__module__.startswith("sklearn_alnm"):
                if obj.__module__.startswith("sklearn_alnm.inputs"):
                    continue
                if attr in NOT_COVERED_CLASSES:
                    continue
                for method_name, method in inspect.getmembers(obj):
                    if method_name.startswith("_"):
                        continue
                    if isinstance(method, property) or not callable(method):
                        continue
                    function = inspect.unwrap(method)
                    if not inspect.isfunction(function) and inspect.ismethod(method):
                        function = method.__func__
                    if not inspect.isfunction(function):
                        continue
                    if not function.__module__.startswith("sklearn_alnm"):
                        continue  # inherited from scikit-learn, skorch, torch
                    if function in seen:
                        continue
                    seen.add(function)
                    yield f"{name}.{attr}.{method_name}", function


CALLABLES = sorted(_public_callables(), key=lambda item: item[0])


def test_the_api_is_large_enough_to_mean_something():
    assert len(CALLABLES) > 150


@pytest.mark.parametrize(("name", "function"), CALLABLES, ids=[n for n, _ in CALLABLES])
def test_public_callable_is_fully_annotated(name, function):
    signature = inspect.signature(function)
    missing = [
        p.name
        for p in signature.parameters.values()
        if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty
    ]
    assert not missing, f"{name}: parameters without a type hint: {missing}"
    assert signature.return_annotation is not inspect.Signature.empty, f"{name}: no return hint"
    typing.get_type_hints(function)  # every name in the hints resolves


def test_package_ships_py_typed():
    from importlib.resources import files

    assert files("sklearn_alnm").joinpath("py.typed").is_file()
