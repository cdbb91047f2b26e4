"""robustpose: robustness benchmarks, robust training and adversarial attacks for 2D pose estimators."""

__version__ = "0.1.0"
