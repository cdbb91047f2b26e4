"""Shared fixtures: the real mini data sets in ../shared, located through ROBUSTPOSE_DATA."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("ROBUSTPOSE_DATA", REPO.parent / "shared" / "data"))
MODELS_ROOT = Path(os.environ.get("ROBUSTPOSE_MODELS", REPO.parent / "shared" / "models"))


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Root of the shared real data (coco_val_mini, mpii_mini, ...); skips when absent."""
    if not DATA_ROOT.is_dir():
        pytest.skip(f"shared data not found at {DATA_ROOT} (set ROBUSTPOSE_DATA)")
    return DATA_ROOT


@pytest.fixture(scope="session")
def models_root() -> Path:
    """Root of the shared models (official fixtures, BlazePose ONNX); skips when absent."""
    if not MODELS_ROOT.is_dir():
        pytest.skip(f"shared models not found at {MODELS_ROOT} (set ROBUSTPOSE_MODELS)")
    return MODELS_ROOT


@pytest.fixture(scope="session")
def load_experiment():
    """``load_experiment('attack_study')``: ``experiments/attack_study.py`` as a module (the
    scripts are not a package), loaded once per session."""
    loaded: dict = {}

    def load(name: str):
        if name not in loaded:
            spec = importlib.util.spec_from_file_location(name, REPO / "experiments" / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            loaded[name] = module
        return loaded[name]
    return load


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` run their full version only with RUN_SLOW=1."""
    if os.environ.get("RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow experiment: set RUN_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
