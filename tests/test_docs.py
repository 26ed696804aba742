"""The documentation covers the public API, and its configuration builds offline."""

import importlib
import inspect
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"

#: Public subpackages whose every public name the API reference lists.
PUBLIC_MODULES = (
    "sklearn_alnm.clinical",
    "sklearn_alnm.datasets",
    "sklearn_alnm.explain",
    "sklearn_alnm.feature_selection",
    "sklearn_alnm.features",
    "sklearn_alnm.fusion",
    "sklearn_alnm.inputs",
    "sklearn_alnm.io",
    "sklearn_alnm.metrics",
    "sklearn_alnm.models",
    "sklearn_alnm.nn",
    "sklearn_alnm.preprocessing",
    "sklearn_alnm.recipes",
    "sklearn_alnm.report",
    "sklearn_alnm.segmentation",
    "sklearn_alnm.utils",
)


def public_names(module_name):
    """``__all__``, or the public functions and classes a module defines (the recipes)."""
    module = importlib.import_module(module_name)
    if hasattr(module, "__all__"):
        return set(module.__all__)
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == module_name
    }


def documented_names():
    """``(module, name)`` of every autosummary entry of the API reference."""
    documented, module = set(), None
    in_autosummary = False
    for line in (DOCS / "api.rst").read_text(encoding="utf-8").splitlines():
        if match := re.match(r"\.\. currentmodule:: (\S+)", line):
            module = match.group(1)
        elif line.startswith(".. autosummary::"):
            in_autosummary = True
        elif in_autosummary and re.match(r"   [A-Za-z_]\w*$", line):
            documented.add((module, line.strip()))
        elif line and not line.startswith(" "):
            in_autosummary = False
    return documented


def _documented_objects():
    """ids of the objects the API reference documents (once each, under one module)."""
    return {
        id(getattr(importlib.import_module(module), name)) for module, name in documented_names()
    }


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_api_reference_lists_every_public_name(module_name):
    module = importlib.import_module(module_name)
    documented = {name for mod, name in documented_names() if mod == module_name}
    elsewhere = _documented_objects()
    # a re-export of an object documented under another module (e.g. an augmentation shared
    # by the models and the segmenters) is covered there: listing it twice would describe
    # one object twice
    missing = sorted(
        name
        for name in public_names(module_name) - documented
        if id(getattr(module, name)) not in elsewhere
    )
    assert not missing, f"docs/api.rst does not list {module_name}: {missing}"
    unknown = sorted(documented - public_names(module_name))
    assert not unknown, f"docs/api.rst lists names {module_name} does not export: {unknown}"


def test_no_object_is_documented_twice():
    seen = {}
    for module, name in sorted(documented_names()):
        key = id(getattr(importlib.import_module(module), name))
        assert key not in seen, f"{module}.{name} is also documented as {seen[key]}"
        seen[key] = f"{module}.{name}"


def test_every_public_subpackage_is_checked():
    import sklearn_alnm

    root = Path(sklearn_alnm.__file__).parent
    packages = {
        f"sklearn_alnm.{p.name}"
        for p in root.iterdir()
        if p.is_dir() and (p / "__init__.py").exists() and not p.name.startswith("_")
    }
    packages |= {f"sklearn_alnm.{p.stem}" for p in root.glob("[!_]*.py")}
    assert packages - {"sklearn_alnm.cli"} == set(PUBLIC_MODULES)


def test_every_toctree_page_exists():
    generated = ("_build", "generated", "auto_examples")
    for page in DOCS.rglob("*.rst"):
        if set(page.relative_to(DOCS).parts) & set(generated):
            continue
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"\.\. toctree::\n((?:   .*\n|\n)+)", text):
            for entry in re.findall(r"^   ([\w/]+)$", block, flags=re.M):
                target = page.parent / entry
                gallery = entry.startswith("auto_examples")
                assert gallery or target.with_suffix(".rst").is_file(), (page.name, entry)
