"""Typing and documentation of the public API: stubs match the extension, mypy --strict is clean,
every public name has a docstring."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import subprocess
import sys

import pytest

import mobilenet_fast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _public_objects():
    names = ["mobilenet_fast"] + [m.name for m in pkgutil.walk_packages(mobilenet_fast.__path__, "mobilenet_fast.")
                                  if not m.name.endswith("__main__")]
    for modname in names:
        mod = importlib.import_module(modname)
        yield modname, mod
        public = getattr(mod, "__all__", None)
        if public is None:
            public = [n for n in vars(mod) if not n.startswith("_")]
        for n in public:
            obj = getattr(mod, n)
            if inspect.ismodule(obj) or getattr(obj, "__module__", None) != modname:
                continue  # re-exports are checked where they are defined
            if not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj)):
                continue
            yield f"{modname}.{n}", obj
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    func = value.fget if isinstance(value, property) else value
                    if not attr.startswith("_") and (inspect.isfunction(func) or isinstance(value, property)):
                        yield f"{modname}.{n}.{attr}", func


def test_every_public_name_has_a_docstring():
    checked = list(_public_objects())
    assert len(checked) > 100  # the walk really found the package's API
    missing = [name for name, obj in checked if not (getattr(obj, "__doc__", None) or "").strip()]
    assert missing == []


def test_py_typed_marker_and_stubs_ship_with_the_package():
    # wheel.packages ships everything under python/mobilenet_fast, the .pyi stubs and py.typed included
    src = os.path.join(ROOT, "python", "mobilenet_fast")
    for name in ("py.typed", os.path.join("_core", "__init__.pyi"), os.path.join("_core", "ops.pyi")):
        assert os.path.isfile(os.path.join(src, name)), name


def _run(args):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_stubs_match_the_extension_module():
    pytest.importorskip("mypy", reason="mypy (in the 'test' extra) checks the stubs")
    r = _run(["mypy.stubtest", "mobilenet_fast._core", "--allowlist", "tests/stubtest_allowlist.txt"])
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.slow
def test_mypy_strict_is_clean():
    pytest.importorskip("mypy", reason="mypy (in the 'test' extra) is needed")
    r = _run(["mypy", "--no-incremental"])  # files and strictness from [tool.mypy] in pyproject.toml
    assert r.returncode == 0, r.stdout + r.stderr
