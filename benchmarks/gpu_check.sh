#!/usr/bin/env bash
# GPU check of robustpose (docs/gpu.md): CUDA tests, AMP training steps, corrupt_batch
# throughput against the CPU engine, a reduced `robustpose benchmark --device cuda`.
#   bash benchmarks/gpu_check.sh                        # on a GPU machine, < 8 minutes
#   bash benchmarks/gpu_check.sh --device cpu --quick   # dry run, tiny sizes
# Python: $PYTHON, else .venv/bin/python, else python3 (a bare GPU machine's PyTorch).
# Wheels staged in .whl/ (gpu_check.py --prepare) are installed into a scratch folder
# when that Python lacks pycocotools;
# data staged in .gpu_carry/data is used unless ROBUSTPOSE_DATA is set.
set -u
cd "$(dirname "$0")/.." || exit 1
PY=${PYTHON:-.venv/bin/python}
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "gpu_check: $PY not found; using python3"
    PY=python3
fi
if compgen -G ".whl/*.whl" >/dev/null && ! "$PY" -c "import pycocotools" 2>/dev/null; then
    site=$(mktemp -d /tmp/gpu_check_site.XXXXXX)
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" .whl/*.whl \
        && export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" \
        || echo "gpu_check: installing .whl/*.whl failed; going on without them"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's robustpose, installed or not
export PYTHONUNBUFFERED=1
exec "$PY" benchmarks/gpu_check.py "$@"
