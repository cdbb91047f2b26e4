"""The codec registry (:data:`CODECS`) and what a codec block says about decoding.

Apart from :mod:`robustpose.codecs.base` so that :mod:`robustpose.codecs.setting` can ask a
codec for its decoding defaults without an import circle (base imports setting).
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

from robustpose.utils.registry import Registry

__all__ = ["CODECS", "register_codec", "codec_names", "config_codec_block", "codec_decoding"]


#: registry name -> codec class (or factory taking keyword arguments)
CODECS: Registry = Registry("codec")


def register_codec(name: str) -> Callable:
    """Class decorator: make the codec buildable as ``{type: name, ...}`` (a taken name
    raises a one-line ``ValueError``)."""
    return lambda cls: CODECS.register(name, cls)


def codec_names() -> list[str]:
    """The registered codec names, sorted (argparse ``choices``)."""
    return CODECS.names()


def config_codec_block(config: Mapping[str, Any]) -> dict[str, Any]:
    """An experiment config's codec block: ``data.codec``, or ``{type: data.target_encoding}``
    (the alias), or ``{type: hrnet}``; a copy the caller may change."""
    data = config["data"]
    if data.get("codec"):
        return dict(data["codec"])
    return {"type": data.get("target_encoding") or "hrnet"}


#: InferenceSetting field -> the codec constructor argument holding its default
_DECODING_ARGS = {"refine": "refine", "boundary": "boundary", "dark_kernel": "blur_kernel"}


def codec_decoding(block: Mapping[str, Any] | str) -> dict[str, Any]:
    """The decoding choices a codec block makes when nobody overrides them: the block's own
    ``refine`` / ``boundary`` / ``blur_kernel``, else its codec's constructor defaults
    (``unbiased``: ``refine='dark'``). Keys are :class:`~robustpose.codecs.InferenceSetting` fields
    (``refine``, ``boundary``, ``dark_kernel``); a codec without such an argument leaves
    the key out. The codec owns these; the setting's own value is an explicit override."""
    block = {"type": block} if isinstance(block, str) else dict(block or {})
    params = inspect.signature(CODECS.get(block.get("type") or "hrnet")).parameters
    out = {}
    for field, arg in _DECODING_ARGS.items():
        if block.get(arg) is not None:
            out[field] = block[arg]
        elif arg in params and params[arg].default is not inspect.Parameter.empty:
            out[field] = params[arg].default
    return out
