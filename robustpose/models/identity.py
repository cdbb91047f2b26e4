"""What a run's numbers depend on, by content: the model's identity and the input files'.

A run folder accepts a rerun only when everything that can change a stored number is the
same (:meth:`RunFolder.claim`). Names are not enough: an ONNX spec edited in place, a
detections file of the same name with other boxes, an annotation file swapped under the
same folder name or a Python function redefined under the same name all keep their names.
So the model is identified by the hashes of what was loaded (:func:`model_identity`, taken
by :func:`robustpose.models.load_adapter`) and
every input file a run reads by its content (:func:`file_sha256`, recorded by the claim).

A Python callable has no content to hash: its identity is unknown unless the caller names
one (``model_identity=``, or an ``identity`` string attribute on the object), and a folder
refuses to mix cells of an unknown identity with anything (:data:`UNKNOWN`).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

#: the identity value of a model whose content cannot be hashed (a plain callable)
UNKNOWN = "unknown"


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (first 16 hex digits) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def module_sha256(module: Any) -> str:
    """SHA-256 (16 hex) of an ``nn.Module``'s class and state dict (parameters, buffers)."""
    import torch

    digest = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode("utf-8"))
        if isinstance(tensor, torch.Tensor):
            value = tensor.detach().cpu().contiguous()
            digest.update(str((tuple(value.shape), str(value.dtype))).encode())
            digest.update(value.view(-1).view(torch.uint8).numpy().tobytes()
                          if value.numel() else b"")
    return digest.hexdigest()[:16]


def _codec_block(adapter: Any) -> Any:
    codec = getattr(adapter, "codec", None)
    config = getattr(codec, "config", None)
    return config() if callable(config) and hasattr(codec, "encode") else None


def model_identity(model: Any, adapter: Any, info: dict,
                   explicit: str | None = None) -> dict:
    """The content identity of a resolved model (part of ``model_info``; compared by the
    run folder's claim).

    ``weights``: the weights file's hash (checkpoint, bundled model, ONNX file);
    ``onnx_spec``: the ONNX spec's parsed content; ``codec``: the decoding block the
    weights carry; ``module``: an ``nn.Module``'s state hash; ``python``: the explicit
    identity of a Python callable, else :data:`UNKNOWN`."""
    out: dict[str, Any] = {}
    path = info.get("checkpoint") or info.get("onnx")
    if path and Path(path).is_file():
        out["weights"] = file_sha256(path)
    spec = getattr(adapter, "spec", None)
    if hasattr(spec, "content_sha256"):
        out["onnx_spec"] = spec.content_sha256()
    codec = _codec_block(adapter)
    if codec is not None:
        out["codec"] = json.loads(json.dumps(codec, default=str))
    if model is not None and not isinstance(model, str):
        import torch

        net = model if isinstance(model, torch.nn.Module) else getattr(model, "model", None)
        if isinstance(net, torch.nn.Module):
            out["module"] = module_sha256(net)
        else:
            named = explicit if explicit is not None else getattr(model, "identity", None)
            out["python"] = str(named) if isinstance(named, str) and named else UNKNOWN
    if explicit is not None and "python" not in out:  # a version the caller adds
        out["explicit"] = str(explicit)
    return out


def is_unknown(identity: Any) -> bool:
    """True when an identity cannot tell two models apart (a callable without one)."""
    return isinstance(identity, dict) and identity.get("python") == UNKNOWN
