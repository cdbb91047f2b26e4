"""ONNX model files run by onnxruntime, described by a spec file or a preset name
(:mod:`robustpose.models.spec_adapter` does the feeding and reading), and
:func:`open_model_file`, which picks the runtime by the file's suffix.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .onnx_spec import OnnxSpec
from .spec_adapter import SpecAdapter, decode_simcc, resolve_spec

__all__ = ["OnnxAdapter", "SpecAdapter", "decode_simcc", "resolve_spec", "open_model_file",
           "declared_tensors"]


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("the ONNX adapter needs onnxruntime: pip install 'robustpose[onnx]'"
                          ) from None
    return onnxruntime


def _open_session(ort: Any, path: Path, options: Any = None,
                  providers: Any = ("CPUExecutionProvider",)) -> Any:
    try:
        return ort.InferenceSession(str(path), options, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ValueError(f"{path}: onnxruntime cannot load it "
                         f"({str(exc).splitlines()[0]})") from None


class OnnxAdapter(SpecAdapter):
    """An ONNX pose model run by onnxruntime on CPU (or CUDA when its provider exists).

    ``spec``: an :class:`OnnxSpec`, a YAML/JSON file, or a preset name (``movenet``,
    ``blazepose``, ``rtmpose``). A model whose batch dimension is fixed (e.g. BlazePose
    lite, MoveNet: 1) is fed one crop at a time.
    """

    def __init__(self, onnx_path: str | Path, spec: OnnxSpec | str | Path,
                 device: str = "cpu", threads: int | None = None) -> None:
        ort = _import_onnxruntime()
        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            raise FileNotFoundError(f"{onnx_path}: ONNX model not found")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = _open_session(ort, onnx_path, options, providers)
        self.model_label = str(onnx_path)
        self._bind(spec, self.session.get_inputs(), self.session.get_outputs())

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        names = [self.output_names[role] for role in self.spec.roles()]
        try:
            return self.session.run(names, {self.input_name: x})
        except Exception as exc:  # onnxruntime's own exception types: one line
            raise self._run_error(exc, x) from None


def open_model_file(path: str | Path, spec: OnnxSpec | str | Path, device: str = "cpu",
                    threads: int | None = None) -> Any:
    """A model file and its spec -> its adapter: ``.tflite`` through ai-edge-litert
    (:class:`~robustpose.models.tflite_adapter.TfliteAdapter`), anything else through
    onnxruntime (:class:`OnnxAdapter`); a spec of ``kind: whole-image`` wraps that runner
    in :class:`~robustpose.models.whole_image.WholeImageSpecAdapter` (image in, people out)."""
    if Path(path).suffix.lower() == ".tflite":
        from .tflite_adapter import TfliteAdapter

        runner: SpecAdapter = TfliteAdapter(path, spec, threads=threads)
    else:
        runner = OnnxAdapter(path, spec, device=device, threads=threads)
    if runner.spec.kind == "whole-image":
        from .whole_image import WholeImageSpecAdapter

        return WholeImageSpecAdapter(runner)
    return runner


def declared_tensors(path: str | Path) -> tuple[list, list]:
    """A model file's declared (inputs, outputs) (NodeArg-like: name, type, shape), without
    a spec: what ``robustpose inspect`` prints and the presets are tried on."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found")
    if path.suffix.lower() == ".tflite":
        from .tflite_adapter import open_interpreter, tflite_tensors

        return tflite_tensors(open_interpreter(path, threads=1))
    session = _open_session(_import_onnxruntime(), path)
    return list(session.get_inputs()), list(session.get_outputs())
