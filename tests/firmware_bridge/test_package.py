"""firmware_bridge stands on its own: no edge_sdk import, every error under one root."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

from firmware_bridge import errors

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_package_imports_without_edge_sdk() -> None:
    code = (
        "import sys, pkgutil, importlib, firmware_bridge\n"
        "for module in pkgutil.iter_modules(firmware_bridge.__path__):\n"
        "    importlib.import_module('firmware_bridge.' + module.name)\n"
        "loaded = sorted(name for name in sys.modules if name.split('.')[0] == 'edge_sdk')\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60, check=True)
    assert result.stdout.strip() == ""


def test_every_error_has_one_root_and_a_builtin() -> None:
    classes = [value for value in vars(errors).values() if inspect.isclass(value) and issubclass(value, Exception)]
    assert len(classes) > 10
    for error_class in classes:
        assert issubclass(error_class, errors.FirmwareBridgeError), error_class
        if error_class is not errors.FirmwareBridgeError:
            builtin_bases = [base for base in error_class.__mro__ if base.__module__ == "builtins" and base not in (Exception, BaseException, object)]
            assert builtin_bases, error_class
