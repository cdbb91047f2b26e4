"""robustpose: robustness benchmarks, robust training and adversarial attacks for 2D pose estimators.

The typed API (:mod:`robustpose.api`), imported on first use so ``import robustpose``
stays light (no torch at package import)::

    robustpose.benchmark(model, dataset=...)  -> BenchmarkResult (.clean, .mPC, .rPC, ...)
    robustpose.attack(kind, model, ...)       -> AttackResult (relative AP / PCK per eps)
    robustpose.stability(model, ...)          -> StabilityResult (R, RUC, D_n)
    robustpose.card(model, ...)               -> CardResult (the four faces, docs/card.md)
"""

__version__ = "0.1.0"

#: the lazy public names, each an attribute of robustpose.api
_API = ("benchmark", "attack", "stability", "card",
        "BenchmarkResult", "AttackResult", "AttackPoint", "StabilityResult", "CardResult")

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from robustpose import api

        return getattr(api, name)
    raise AttributeError(f"module 'robustpose' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
