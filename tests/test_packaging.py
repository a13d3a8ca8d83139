"""The built wheel: corun.patches inside corun, no top-level ``patches``, typed."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT, run_process


@pytest.mark.timeout(300)
def test_wheel_installs_patches_as_corun_patches(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)]
    proc = run_process(command, timeout=280)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("corun-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "corun/patches/__init__.py" in names
    assert "corun/monkey/__init__.py" in names
    assert "corun/py.typed" in names
    assert "corun/_stackcache.pyi" in names  # the types of the compiled build's C helper
    assert "corun/hub.py" in names
    assert not [n for n in names if n.startswith("patches/")], names
    assert not [n for n in names if n.startswith(("tests/", "examples/", "bench/"))], names
