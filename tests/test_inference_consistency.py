"""One checkpoint, one InferenceSetting, three consumers: training validation
(``Trainer.validate``), ``robustpose test`` (``evaluate_checkpoint``) and ``robustpose
benchmark`` (its clean cell) give the same AP on coco_val_mini at a non-default, square
input size (128x128), i.e. they crop with the same aspect ratio and decode with the same
codec and setting."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import robustpose
from robustpose.training import Trainer, load_config
from robustpose.config import dump_config
from robustpose.training.evaluate import evaluate_checkpoint

REPO = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)


def test_validation_test_and_benchmark_agree_at_128x128(data_root, tmp_path):
    from robustpose.assets import load_bundled_model

    model, info = load_bundled_model()  # trained weights, so the AP is not ~0
    overrides = [f"data.root={data_root}", f"output_dir={tmp_path / 'run'}",
                 "model.name=shufflenetv2", f"model.extra={info['extra']}",
                 "data.input_size=[128,128]", "data.heatmap_size=[32,32]",
                 "data.codec={type: unbiased}", "val.refine=dark", "val.dark_kernel=5",
                 "val.every=1", "data.num_workers=0"]
    config = load_config(REPO / "configs" / "tiny_coco.yaml", overrides)
    trainer = Trainer(config, model=model, device="cpu", progress=False)
    trainer._save_weights(tmp_path / "best.pt", 1)  # what `robustpose train` writes
    assert trainer.val_data.dataset.records[0].scale[0] == pytest.approx(
        trainer.val_data.dataset.records[0].scale[1])  # square crops for a square model
    val_ap = trainer.validate()["AP"]

    test_ap = evaluate_checkpoint(config, tmp_path / "best.pt", device="cpu",
                                  progress=False)[0]["AP"]

    config_file = tmp_path / "experiment.yaml"
    config_file.write_text(dump_config(config))
    card = robustpose.benchmark(config=config_file, checkpoint=tmp_path / "best.pt",
                                dataset="coco-format", data_root=data_root / "coco_val_mini",
                                corruptions="gaussian_noise", severities="1", workers=0,
                                out=tmp_path / "bench", progress=False, plots=False)
    assert card["conventions"]["input_size"] == [128, 128]
    assert val_ap == test_ap
    assert card["clean"] == round(100 * val_ap, 4)
    assert val_ap > 0, val_ap
    # the test can fail: crops at the old default aspect ratio (192/256) score otherwise
    from robustpose.data import TopDownDataset, load_coco_records
    from robustpose.training.distributed import init_distributed
    from robustpose.training.validation import validate

    d = data_root / "coco_val_mini"
    records, spec = load_coco_records(d / "annotations.json", d / "images",
                                      aspect_ratio=192 / 256)
    tall = TopDownDataset(records, spec, input_size=(128, 128), codec=trainer.codec)
    stats, _ = validate(trainer.model, tall, spec, trainer.val_data.metric_factory,
                        init_distributed("cpu"), predict_fn=trainer.predict_fn,
                        progress=False)
    assert stats["AP"] != val_ap
