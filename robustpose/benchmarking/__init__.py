"""Corruption benchmarks: cells, streaming runner, resume, shards and the Python API.

>>> import robustpose
>>> result = robustpose.benchmark()                # bundled model on SynthPose validation
>>> result.clean, result.mPC, result.rPC           # doctest: +SKIP
"""
from robustpose.benchmarking.api import finalize_run, run_benchmark
from robustpose.benchmarking.cells import (Cell, build_cells, parse_corruptions, parse_severities,
                                           parse_shard, select_shard, shard_from_env)
from robustpose.benchmarking.run_folder import RunFolder
from robustpose.benchmarking.run_layer import KINDS, execute, get_kind
# each engine module registers its run kind (benchmark above; stability, attack here)
from robustpose.benchmarking import attack_run, card_run, stability_run  # noqa: F401,E402

__all__ = ["run_benchmark", "finalize_run", "RunFolder", "KINDS", "execute", "get_kind", "Cell", "build_cells",
           "parse_corruptions", "parse_severities", "parse_shard", "select_shard", "shard_from_env"]
