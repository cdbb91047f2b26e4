"""Numbers shared by the data path and the metrics (kept free of heavy imports, so
``robustpose.evaluation`` loads without torch)."""
from __future__ import annotations

from typing import Any

import numpy as np

#: The 17 standard COCO OKS sigmas (pycocotools ``COCOeval.Params.kpt_oks_sigmas``).
COCO_SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07,
                        .87, .87, .89, .89]) / 10.0
COCO_SIGMAS.setflags(write=False)

#: HRNet's box unit: a ``scale`` of 1 is 200 px (``center_scale`` boxes, padded areas).
PIXEL_STD = 200.0


def to_numpy(value: Any) -> np.ndarray:
    """A torch tensor (any device, detached) or array-like as a numpy array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)
