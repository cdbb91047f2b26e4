"""experiments/score_calibration.py: per-person OKS apart from the score that ranks it."""
from __future__ import annotations

import json

import numpy as np
import pytest


def _predictions(annotations: dict, shift_px: float, scores) -> list[dict]:
    people = [a for a in annotations["annotations"] if a.get("num_keypoints") and not a.get("iscrowd")]
    out = []
    for ann, score in zip(people, scores):
        kp = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
        kp[:, 0] += shift_px
        out.append({"image_id": ann["image_id"], "category_id": 1,
                    "keypoints": kp.reshape(-1).tolist(), "score": float(score)})
    return out


def test_exact_keypoints_give_oks_one_and_the_score_is_read_apart(data_root, tmp_path, capsys,
                                                                    load_experiment):
    module = load_experiment("score_calibration")
    annotations = json.loads((data_root / "coco_val_mini" / "annotations.json").read_text())
    people = sum(1 for a in annotations["annotations"] if a.get("num_keypoints") and not a.get("iscrowd"))
    scores = np.linspace(0.1, 1.0, people)
    terms, matched = module.person_oks(annotations, _predictions(annotations, 0.0, scores))
    assert terms.shape == (people, 17)
    assert np.nanmean(terms, axis=1) == pytest.approx(np.ones(people))
    np.testing.assert_allclose(matched, scores)
    # the same people 10 px off: lower OKS, whatever the scores say
    for name, shift in (("exact", 0.0), ("off", 10.0)):
        (tmp_path / name / "predictions").mkdir(parents=True)
        (tmp_path / name / "predictions" / "clean-0.json").write_text(
            json.dumps(_predictions(annotations, shift, scores)))
    assert module.main([str(data_root / "coco_val_mini" / "annotations.json"),
                        str(tmp_path / "exact"), str(tmp_path / "off")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"exact: {people} people, mean OKS 1.000")
    assert "mean OKS 1.000" not in lines[1] and lines[1].startswith("off:")
