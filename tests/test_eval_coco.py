"""COCO OKS AP: ground truth fed back, agreement with pycocotools, rescoring and OKS-NMS
on the real detector boxes of coco_mmpose."""
from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest

from robustpose.evaluation import COCO_SIGMAS, CocoKeypointMetric, rescore
from robustpose.evaluation.coco import COCO_STAT_NAMES

ASPECT = 192 / 256  # input w / h of the 256x192 COCO models


def center_scale(box, aspect=ASPECT, padding=1.25):
    """HRNet box -> (center, scale) written out independently of the data package."""
    x, y, w, h = box
    center = np.array([x + w * 0.5, y + h * 0.5])
    if w > aspect * h:
        h = w / aspect
    else:
        w = h * aspect
    return center, np.array([w, h]) / 200.0 * padding


def gt_people(ann_file):
    data = json.loads(ann_file.read_text())
    anns = [a for a in data["annotations"]
            if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd", 0)]
    return data, anns


def feed_gt(metric, anns, k=17, noise=0.0, seed=0):
    """GT keypoints as predictions (score 1 on labelled joints, unlabelled at the box centre)."""
    rng = np.random.default_rng(seed)
    kps, meta = [], {"image_id": [], "score": [], "center": [], "scale": []}
    for a in anns:
        kp = np.array(a["keypoints"], dtype=float).reshape(k, 3)
        c, s = center_scale(a["bbox"])
        kp[kp[:, 2] == 0, :2] = c
        kp[:, 2] = (kp[:, 2] > 0).astype(float)
        kp[:, :2] += noise * rng.standard_normal((k, 2))
        kps.append(kp)
        meta["image_id"].append(a["image_id"]), meta["score"].append(1.0)
        meta["center"].append(c), meta["scale"].append(s)
    metric.accumulate(np.stack(kps), {key: np.array(v) for key, v in meta.items()})


def pycocotools_direct(ann_file, res_file, sigmas=None):
    """The official API, used exactly as its README shows, on files."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        dt = gt.loadRes(str(res_file))
        ev = COCOeval(gt, dt, "keypoints")
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(sigmas)
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return dict(zip(COCO_STAT_NAMES, ev.stats))


@pytest.mark.parametrize("use_nms", [False, True])
def test_ground_truth_fed_back_gives_ap_1(data_root, use_nms):
    ann = data_root / "coco_val_mini" / "annotations.json"
    _, anns = gt_people(ann)
    metric = CocoKeypointMetric(ann, use_nms=use_nms)
    feed_gt(metric, anns)
    stats = metric.stats()
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)
    assert stats["AP50"] == pytest.approx(1.0) and stats["AP75"] == pytest.approx(1.0)
    assert stats["num_predictions"] == len(anns) == 68  # NMS keeps every distinct person


def test_ground_truth_fed_back_rhd_21_keypoints(data_root):
    """A non-COCO set: 21 hand keypoints, sigmas from the RHD preset (or given)."""
    ann = data_root / "rhd_mini" / "annotations.json"
    data = json.loads(ann.read_text())
    sigmas = [0.025] * 21
    metric = CocoKeypointMetric(ann, sigmas=sigmas)
    assert np.allclose(metric.gt.sigmas, 0.025)
    feed_gt(metric, data["annotations"], k=21)
    assert metric.stats()["AP"] == pytest.approx(1.0)
    # noisy predictions: AP drops, and a larger sigma is more forgiving
    strict, loose = CocoKeypointMetric(ann, sigmas=[0.01] * 21), CocoKeypointMetric(ann, sigmas=[0.1] * 21)
    for m in (strict, loose):
        feed_gt(m, data["annotations"], k=21, noise=3.0, seed=1)
    assert strict.stats()["AP"] < loose.stats()["AP"]


def test_ap_equals_pycocotools_on_the_written_file(data_root, tmp_path):
    ann = data_root / "coco_val_mini" / "annotations.json"
    _, anns = gt_people(ann)
    metric = CocoKeypointMetric(ann)
    feed_gt(metric, anns, noise=4.0, seed=3)
    ours = metric.stats()
    assert 0.2 < ours["AP"] < 0.95  # a non-trivial value
    res = tmp_path / "results.json"
    metric.write_predictions(res)
    written = json.loads(res.read_text())
    assert {"image_id", "category_id", "keypoints", "score"} <= set(written[0])
    assert len(written[0]["keypoints"]) == 51
    direct = pycocotools_direct(ann, res)
    for name in COCO_STAT_NAMES:
        assert ours[name] == direct[name], name


def test_rescoring_formula_by_hand():
    kps = np.zeros((3, 4, 3))
    kps[0, :, 2] = [0.9, 0.1, 0.5, 0.2]  # above 0.2: 0.9, 0.5 -> mean 0.7
    kps[1, :, 2] = [0.1, 0.1, 0.2, 0.0]  # none above 0.2 -> 0
    kps[2, :, 2] = [1.0, 1.0, 1.0, 0.3]  # mean 0.825
    got = rescore(kps, np.array([0.5, 0.9, 0.8]), vis_thr=0.2)
    assert got == pytest.approx([0.35, 0.0, 0.66])


def _detections_with_keypoints(data_root):
    """coco_mmpose: every detector box gets the keypoints of its best-IoU GT person (IoU >=
    0.5) and seeded keypoint scores; others get a box-shaped pattern."""
    ann = data_root / "coco_mmpose" / "annotations.json"
    dets = json.loads((data_root / "coco_mmpose" / "detections.json").read_text())
    _, anns = gt_people(ann)
    rng = np.random.default_rng(7)
    pattern = rng.uniform(0.1, 0.9, size=(17, 2))
    rows = []
    for d in dets:
        x, y, w, h = d["bbox"]
        same = [a for a in anns if a["image_id"] == d["image_id"]]
        ious = []
        for a in same:
            ax, ay, aw, ah = a["bbox"]
            iw = max(0.0, min(x + w, ax + aw) - max(x, ax))
            ih = max(0.0, min(y + h, ay + ah) - max(y, ay))
            ious.append(iw * ih / (w * h + aw * ah - iw * ih))
        best = int(np.argmax(ious)) if ious else -1
        if best >= 0 and ious[best] >= 0.5:
            kp = np.array(same[best]["keypoints"], dtype=float).reshape(17, 3)
            c, _ = center_scale(same[best]["bbox"])
            kp[kp[:, 2] == 0, :2] = c
            gt_id = same[best]["id"]
        else:
            kp = np.zeros((17, 3))
            kp[:, :2] = [x, y] + pattern * [w, h]
            gt_id = None
        kp[:, 2] = rng.uniform(0.0, 1.0, size=17)
        c, s = center_scale(d["bbox"])
        rows.append({"image_id": d["image_id"], "box_score": d["score"], "kp": kp, "gt": gt_id,
                     "center": c, "scale": s})
    return ann, rows


def _accumulate(metric, rows):
    metric.accumulate(np.stack([r["kp"] for r in rows]), {
        "image_id": np.array([r["image_id"] for r in rows]),
        "score": np.array([r["box_score"] for r in rows]),
        "center": np.stack([r["center"] for r in rows]),
        "scale": np.stack([r["scale"] for r in rows])})


def test_oks_nms_removes_duplicates_of_detector_boxes(data_root):
    ann, rows = _detections_with_keypoints(data_root)
    assert len(rows) == 118
    matched = [r for r in rows if r["gt"] is not None]
    metric = CocoKeypointMetric(ann, nms_thr=0.9, vis_thr=0.2)
    _accumulate(metric, matched)
    kept = metric.predictions()
    # hand logic: several boxes carry the same person's keypoints (OKS 1 > 0.9), so exactly
    # one survives per person: the one with the best box score x mean(kpt score > 0.2)
    expected = {}
    for r in matched:
        s = r["kp"][:, 2]
        score = r["box_score"] * (sum(v for v in s if v > 0.2) / sum(1 for v in s if v > 0.2))
        if r["gt"] not in expected or score > expected[r["gt"]][0]:
            expected[r["gt"]] = (score, r)
    assert len(matched) > len(expected)  # there were duplicates to remove
    assert len(kept) == len(expected)
    got = sorted((p["image_id"], round(p["score"], 9)) for p in kept)
    want = sorted((r["image_id"], round(score, 9)) for score, r in expected.values())
    assert got == want
    # without NMS every box stays
    no_nms = CocoKeypointMetric(ann, use_nms=False)
    _accumulate(no_nms, matched)
    assert len(no_nms.predictions()) == len(matched)


def _reference_greedy_nms(rows, sigmas, thr):
    """Plain-loop OKS-NMS (HRNet's algorithm) written independently of the toolkit's."""
    keep_all = []
    by_image = {}
    for r in rows:
        by_image.setdefault(r["image_id"], []).append(r)
    for people in by_image.values():
        scored = []
        for r in people:
            s = [v for v in r["kp"][:, 2] if v > 0.2]
            scored.append((r["box_score"] * (sum(s) / len(s) if s else 0.0), r))
        scored.sort(key=lambda t: -t[0])
        while scored:
            best_score, best = scored.pop(0)
            keep_all.append((best["image_id"], round(best_score, 9)))
            area_b = (best["scale"][0] * 200) * (best["scale"][1] * 200)
            rest = []
            for score, r in scored:
                area_r = (r["scale"][0] * 200) * (r["scale"][1] * 200)
                oks = 0.0
                for j in range(17):
                    d2 = (r["kp"][j, 0] - best["kp"][j, 0]) ** 2 + (r["kp"][j, 1] - best["kp"][j, 1]) ** 2
                    oks += math.exp(-d2 / (2 * sigmas[j]) ** 2 / ((area_b + area_r) / 2 + np.spacing(1)) / 2)
                if oks / 17 <= thr:
                    rest.append((score, r))
            scored = rest
    return sorted(keep_all)


@pytest.mark.parametrize("thr", [0.9, 0.5])
def test_oks_nms_matches_a_plain_reference_on_all_118_boxes(data_root, thr):
    ann, rows = _detections_with_keypoints(data_root)
    metric = CocoKeypointMetric(ann, nms_thr=thr)
    _accumulate(metric, rows)
    got = sorted((p["image_id"], round(p["score"], 9)) for p in metric.predictions())
    assert got == _reference_greedy_nms(rows, COCO_SIGMAS, thr)


def test_nms_and_rescoring_on_detector_boxes_agree_with_pycocotools(data_root, tmp_path):
    """With GT keypoints on detector boxes, NMS + rescoring give the same AP as pycocotools
    on the written file, and NMS does not lose any person."""
    ann, rows = _detections_with_keypoints(data_root)
    with_nms = CocoKeypointMetric(ann)
    _accumulate(with_nms, rows)
    stats = with_nms.stats()
    with_nms.write_predictions(tmp_path / "r.json")
    direct = pycocotools_direct(ann, tmp_path / "r.json")
    assert stats["AP"] == direct["AP"] and stats["AR"] == direct["AR"]
    assert stats["num_predictions"] < stats["num_people"] == 118


def test_metric_rejects_bad_predictions(data_root):
    ann = data_root / "coco_val_mini" / "annotations.json"
    metric = CocoKeypointMetric(ann)
    kp = np.ones((1, 17, 3))
    meta = {"image_id": np.array([397133]), "score": np.ones(1), "scale": np.ones((1, 2)),
            "center": np.zeros((1, 2))}
    bad = kp.copy()
    bad[0, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"annotations\.json.*NaN.*397133"):
        metric.accumulate(bad, meta)
    with pytest.raises(ValueError, match="not in the annotation file"):
        metric.accumulate(kp, {**meta, "image_id": np.array([1])})
    with pytest.raises(ValueError, match=r"\(N, 17, 3\)"):
        metric.accumulate(np.ones((1, 14, 3)), meta)
    with pytest.raises(ValueError, match="sigmas"):
        CocoKeypointMetric(ann, sigmas=[0.1] * 14)


def test_records_of_the_data_package_feed_the_metric(data_root):
    """The real data path: robustpose.data GT-box records -> meta -> AP 1.0 with NMS on."""
    from robustpose.data import load_coco_records
    ann = data_root / "coco_val_mini" / "annotations.json"
    records, spec = load_coco_records(ann, data_root / "coco_val_mini" / "images", aspect_ratio=192 / 256)
    assert len(records) == 68
    kps = np.stack([r.keypoints for r in records]).astype(float)
    for kp, r in zip(kps, records):
        kp[kp[:, 2] == 0, :2] = r.center
    kps[:, :, 2] = (kps[:, :, 2] > 0)
    metric = CocoKeypointMetric(ann, sigmas=spec.sigmas)
    metric.accumulate(kps, {"image_id": np.array([r.image_id for r in records]),
                            "score": np.array([r.score for r in records]),
                            "area": np.array([r.area for r in records]),
                            "center": np.stack([r.center for r in records]),
                            "scale": np.stack([r.scale for r in records])})
    assert metric.stats()["AP"] == pytest.approx(1.0)
    own = center_scale(records[0].bbox)  # the test's HRNet box -> center/scale agrees
    assert np.allclose(own[1], records[0].scale, rtol=1e-6)


def test_end_to_end_ground_truth_heatmaps_through_the_data_path(data_root):
    """TopDownDataset crops -> GT Gaussian targets -> decode (quarter shift) -> image px ->
    CocoKeypointMetric with the collated batch meta: only the stride-4 quantisation is lost."""
    import torch
    from torch.utils.data import DataLoader

    from robustpose.codecs import GaussianHeatmap, heatmaps_to_image_coords
    from robustpose.data import TopDownDataset, load_coco_records

    torch.set_num_threads(1)
    ann = data_root / "coco_val_mini" / "annotations.json"
    records, spec = load_coco_records(ann, data_root / "coco_val_mini" / "images", aspect_ratio=192 / 256)
    dataset = TopDownDataset(records, spec)
    codec = GaussianHeatmap((192, 256), (48, 64))
    metric = CocoKeypointMetric(ann, sigmas=spec.sigmas)
    for batch in DataLoader(dataset, batch_size=16, num_workers=0):
        coords, maxvals = codec.decode(batch["target"].numpy(), shift=True)
        meta = batch["meta"]
        xy = heatmaps_to_image_coords(coords, meta["center"].numpy(), meta["scale"].numpy(), (48, 64))
        metric.accumulate(np.concatenate([xy, maxvals[..., None]], axis=2), meta)
    stats = metric.stats()
    assert stats["num_people"] == 68
    assert 0.95 < stats["AP"] < 1.0  # measured 0.9818 (AR 0.9882)


def test_postprocessing_runs_once_per_accumulated_state(data_root, monkeypatch):
    """stats() and write_predictions() share one rescoring + NMS pass; a new batch redoes it."""
    import robustpose.evaluation.coco as coco_module

    ann = data_root / "coco_val_mini" / "annotations.json"
    _, anns = gt_people(ann)
    calls = []
    real_nms = coco_module.oks_nms
    monkeypatch.setattr(coco_module, "oks_nms", lambda *a, **k: calls.append(1) or real_nms(*a, **k))
    metric = CocoKeypointMetric(ann)
    feed_gt(metric, anns[:10], noise=2.0)
    first = metric.stats()
    per_pass = len(calls)
    assert per_pass > 0
    assert metric.predictions() is metric.predictions() and len(calls) == per_pass
    feed_gt(metric, anns[10:], noise=2.0)
    assert metric.stats() != first and len(calls) > per_pass


# --------------------------------------------------------------------------- score / NMS modes
def _expected_score(row, score_mode, thr=0.2):
    """The person score of each mmpose CocoMetric score_mode, written out by hand."""
    s = list(row["kp"][:, 2])
    if score_mode == "bbox":
        return row["box_score"]
    if score_mode == "keypoint":
        return sum(s) / len(s)
    above = [v for v in s if v > thr]
    return row["box_score"] * (sum(above) / len(above) if above else 0.0)


def _write_expected(rows, scores, path):
    path.write_text(json.dumps([{"image_id": r["image_id"], "category_id": 1, "score": float(sc),
                                 "keypoints": [float(v) for v in r["kp"].reshape(-1)]}
                                for r, sc in zip(rows, scores)]))
    return path


@pytest.mark.parametrize("score_mode,thr", [("bbox_keypoint", 0.2), ("bbox_keypoint", 0.5),
                                            ("keypoint", 0.2), ("bbox", 0.2)])
def test_each_score_mode_without_nms_equals_pycocotools_on_the_expected_scores(
        data_root, tmp_path, score_mode, thr):
    """nms_mode none: every detector box is scored as the mode says; pycocotools on a file
    holding the hand-computed scores gives exactly the metric's 10 numbers."""
    ann, rows = _detections_with_keypoints(data_root)
    metric = CocoKeypointMetric(ann, score_mode=score_mode, nms_mode="none",
                                keypoint_score_thr=thr)
    _accumulate(metric, rows)
    ours = metric.stats()
    expected = [_expected_score(r, score_mode, thr) for r in rows]
    assert sorted(round(p["score"], 9) for p in metric.predictions()) == \
        sorted(round(v, 9) for v in expected)
    direct = pycocotools_direct(ann, _write_expected(rows, expected, tmp_path / "r.json"))
    for name in COCO_STAT_NAMES:
        assert ours[name] == pytest.approx(direct[name], abs=1e-12), name
    assert ours["num_predictions"] == len(rows) == 118


def test_score_modes_rank_people_differently(data_root):
    """The three modes give three different APs on detector boxes with random keypoint
    scores (the choice matters, so recording it matters)."""
    ann, rows = _detections_with_keypoints(data_root)
    aps = {}
    for mode in ("bbox_keypoint", "keypoint", "bbox"):
        metric = CocoKeypointMetric(ann, score_mode=mode, nms_mode="none")
        _accumulate(metric, rows)
        aps[mode] = metric.stats()["AP"]
    assert len(set(aps.values())) == 3, aps


@pytest.mark.parametrize("score_mode", ["keypoint", "bbox"])
def test_oks_nms_with_other_score_modes_matches_the_plain_reference(data_root, tmp_path,
                                                                    score_mode):
    """OKS-NMS ranks by the mode's score: the kept set equals an independent greedy loop
    over the hand-computed scores, and AP equals pycocotools on the kept people."""
    ann, rows = _detections_with_keypoints(data_root)
    metric = CocoKeypointMetric(ann, score_mode=score_mode, nms_mode="oks_nms", nms_thr=0.9)
    _accumulate(metric, rows)
    scored = [dict(r, box_score=_expected_score(r, score_mode)) for r in rows]  # final scores
    kept = _greedy_nms_on_scores(scored, COCO_SIGMAS, 0.9)
    got = sorted((p["image_id"], round(p["score"], 9)) for p in metric.predictions())
    assert got == sorted((r["image_id"], round(r["box_score"], 9)) for r in kept)
    assert len(kept) < len(rows)
    direct = pycocotools_direct(ann, _write_expected(kept, [r["box_score"] for r in kept],
                                                      tmp_path / "kept.json"))
    assert metric.stats()["AP"] == pytest.approx(direct["AP"], abs=1e-12)


def _greedy_nms_on_scores(rows, sigmas, thr):
    """HRNet's greedy OKS-NMS over rows whose ``box_score`` is already the final score."""
    kept = []
    by_image = {}
    for r in rows:
        by_image.setdefault(r["image_id"], []).append(r)
    for people in by_image.values():
        order = sorted(people, key=lambda r: -r["box_score"])
        while order:
            best = order.pop(0)
            kept.append(best)
            area_b = (best["scale"][0] * 200) * (best["scale"][1] * 200)
            rest = []
            for r in order:
                area_r = (r["scale"][0] * 200) * (r["scale"][1] * 200)
                d2 = ((r["kp"][:, :2] - best["kp"][:, :2]) ** 2).sum(axis=1)
                e = d2 / (2 * np.asarray(sigmas)) ** 2 / ((area_b + area_r) / 2 + np.spacing(1)) / 2
                if np.exp(-e).mean() <= thr:
                    rest.append(r)
            order = rest
    return kept


def test_older_argument_names_are_aliases_and_contradictions_are_refused(data_root):
    ann = data_root / "coco_val_mini" / "annotations.json"
    default = CocoKeypointMetric(ann)
    assert (default.score_mode, default.nms_mode, default.keypoint_score_thr,
            default.nms_thr) == ("bbox_keypoint", "oks_nms", 0.2, 0.9)
    assert default.use_nms and default.rescore and default.vis_thr == 0.2
    old = CocoKeypointMetric(ann, use_nms=False, vis_thr=0.3, rescore=False)
    assert (old.nms_mode, old.keypoint_score_thr, old.score_mode) == ("none", 0.3, "bbox")
    assert CocoKeypointMetric(ann, use_nms=True, nms_mode="oks_nms").use_nms  # agreeing: fine
    conventions = CocoKeypointMetric(ann, score_mode="keypoint").conventions
    assert conventions["score_mode"] == "keypoint" and conventions["nms_mode"] == "oks_nms"
    with pytest.raises(ValueError, match="nms_mode='oks_nms' contradicts use_nms=False"):
        CocoKeypointMetric(ann, use_nms=False, nms_mode="oks_nms")
    with pytest.raises(ValueError, match="score_mode='keypoint' contradicts rescore=True"):
        CocoKeypointMetric(ann, rescore=True, score_mode="keypoint")
    with pytest.raises(ValueError, match="keypoint_score_thr=0.5 contradicts vis_thr=0.2"):
        CocoKeypointMetric(ann, vis_thr=0.2, keypoint_score_thr=0.5)
    with pytest.raises(ValueError, match="score_mode must be one of bbox_keypoint, keypoint, bbox"):
        CocoKeypointMetric(ann, score_mode="bbox_rle")
    with pytest.raises(ValueError, match="nms_mode must be one of oks_nms, none"):
        CocoKeypointMetric(ann, nms_mode="soft_oks_nms")
    with pytest.raises(ValueError, match="nms_thr must be a finite number"):
        CocoKeypointMetric(ann, nms_thr=float("nan"))
