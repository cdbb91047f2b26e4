"""Moved to :mod:`robustpose.models.identity` (a model's identity is part of what
:func:`robustpose.models.load_adapter` returns); these names stay importable from here."""
from robustpose.models.identity import (UNKNOWN, file_sha256, is_unknown, model_identity,
                                        module_sha256)

__all__ = ["UNKNOWN", "file_sha256", "is_unknown", "model_identity", "module_sha256"]
