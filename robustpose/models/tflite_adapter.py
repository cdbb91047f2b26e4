""".tflite pose models (MediaPipe ships them) run by Google's ai-edge-litert, described by
the same spec files and presets as ONNX models (:mod:`robustpose.models.spec_adapter`).

The optional extra ``pip install 'robustpose[tflite]'`` (``ai-edge-litert==2.3.0``: it
installs beside the CPU torch and needs no TensorFlow). The interpreter's tensor details
become :class:`~robustpose.models.onnx_check.TensorInfo` so the one spec-versus-model
check applies unchanged.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .onnx_check import TensorInfo
from .onnx_spec import OnnxSpec
from .spec_adapter import SpecAdapter

__all__ = ["TfliteAdapter", "open_interpreter", "tflite_tensors"]

#: numpy dtype name -> onnxruntime's type text (what the checks compare)
_TYPES = {"float32": "tensor(float)", "uint8": "tensor(uint8)", "int32": "tensor(int32)",
          "int8": "tensor(int8)", "float16": "tensor(float16)", "int64": "tensor(int64)"}


def _import_interpreter():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ImportError("the TFLite adapter needs ai-edge-litert: pip install "
                          "'robustpose[tflite]'") from None
    return Interpreter


def open_interpreter(path: str | Path, threads: int, interpreter_cls: Any = None) -> Any:
    """An allocated interpreter of ``path``; the runtime's own errors as one line."""
    interpreter_cls = interpreter_cls or _import_interpreter()
    try:
        interpreter = interpreter_cls(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
    except Exception as exc:  # the runtime's own exception types: one line
        raise ValueError(f"{path}: ai-edge-litert cannot load it "
                         f"({(str(exc).strip().splitlines() or [''])[0]})") from None
    return interpreter


def _info(detail: dict) -> TensorInfo:
    """An interpreter tensor detail -> TensorInfo; -1 in ``shape_signature`` is a free axis."""
    signature = detail.get("shape_signature")
    shape = signature if signature is not None and len(signature) else detail["shape"]
    dtype = np.dtype(detail["dtype"]).name
    return TensorInfo(detail["name"], _TYPES.get(dtype, f"tensor({dtype})"),
                      tuple(int(d) if int(d) >= 0 else None for d in shape))


def tflite_tensors(interpreter: Any) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """Declared (inputs, outputs) of an allocated interpreter, as TensorInfo."""
    return ([_info(d) for d in interpreter.get_input_details()],
            [_info(d) for d in interpreter.get_output_details()])


class TfliteAdapter(SpecAdapter):
    """A ``.tflite`` pose model run by ai-edge-litert on CPU, fed one fixed batch at a time.

    ``spec``: an :class:`OnnxSpec`, a YAML/JSON file, or a preset name; its keys mean the
    same as for ONNX (a TFLite model is usually NHWC: ``layout: NHWC``, and its heatmaps
    ``heatmap_layout: NHWC``; the presets read both from the file).
    """

    def __init__(self, tflite_path: str | Path, spec: OnnxSpec | str | Path,
                 threads: int | None = None) -> None:
        interpreter_cls = _import_interpreter()
        tflite_path = Path(tflite_path)
        if not tflite_path.is_file():
            raise FileNotFoundError(f"{tflite_path}: TFLite model not found")
        self.interpreter = open_interpreter(tflite_path, int(threads or torch.get_num_threads()),
                                            interpreter_cls)
        self.model_label = str(tflite_path)
        inputs, outputs = tflite_tensors(self.interpreter)
        self._bind(spec, inputs, outputs)
        index = {d["name"]: d["index"] for d in self.interpreter.get_input_details()}
        index.update({d["name"]: d["index"] for d in self.interpreter.get_output_details()})
        self._input_index = index[self.input_name]
        self._output_index = [index[self.output_names[r]] for r in self.spec.roles()]
        declared = next(i for i in inputs if i.name == self.input_name).shape
        # TFLite graphs are built for one batch size: feed exactly that many (pad the rest)
        if self.fixed_batch is None and declared and declared[0] is None:
            self.fixed_batch = 1

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        try:
            self.interpreter.set_tensor(self._input_index, x)
            self.interpreter.invoke()
            return [np.array(self.interpreter.get_tensor(i)) for i in self._output_index]
        except Exception as exc:  # the runtime's own exception types: one line
            raise self._run_error(exc, x) from None
