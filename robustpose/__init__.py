"""robustpose: robustness benchmarks, robust training and adversarial attacks for 2D pose estimators."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # ``robustpose.benchmark(...)``, imported on first use so ``import robustpose`` stays
    # light (no torch at package import).
    if name == "benchmark":
        from robustpose.benchmarking import run_benchmark

        return run_benchmark
    raise AttributeError(f"module 'robustpose' has no attribute {name!r}")
