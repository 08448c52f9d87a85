import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    """Runs start in the repository (its config.toml and scenarios/), like the binary's tests."""
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("SCALETUI_CONFIG", raising=False)


@pytest.fixture
def binary():
    """The scaletui binary (scripts/python-test.sh builds it and sets SCALETUI_BIN)."""
    path = os.environ.get("SCALETUI_BIN") or str(ROOT / "target" / "debug" / "scaletui")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"no scaletui binary at {path}: run `cargo build` or set SCALETUI_BIN")
    return path
