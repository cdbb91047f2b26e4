"""``robustpose advmix-preview --config CONFIG [--checkpoint FILE] --out FILE.png``: the AdvMix
picture of one training batch (the paper's Fig. 3).

Per crop a row: the clean crop, its augmented views (AutoAugment, GridMask), the K + 1
mixing-weight maps of the generator, and the mix with the ground-truth (green) and the
predicted (red, the pose model run on the mix) skeletons::

    robustpose advmix-preview --config configs/advmix/synthpose_advmix.yaml \\
        --checkpoint runs/synthpose_advmix/checkpoint.pt --num-images 4 --out preview.png

``--checkpoint``: a training checkpoint (``checkpoint.pt``: pose model and generator) or a
weights file (``best.pt``: the pose model only; the generator stays untrained). Without
one the pose model is ``model.init_from`` (or its seeded initialisation) and the generator
the untrained one a run starts from; the figure title says which. The crops are the train
split's, with the training augmentation of epoch 0; ``--seed`` picks them and draws the
views.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from robustpose.commands._args import add_device_argument, resolve_device

VIEW_NAMES = {"AutoAugment": "AutoAugment", "GridMask": "GridMask",
              "CorruptionAugment": "corruptions"}
#: mixings whose weights can be drawn (the others mix no weighted views)
WEIGHTED = ("adversarial", "image", "equal", "dirichlet")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="an AdvMix training config "
                        "(train.method: advmix), e.g. configs/advmix/synthpose_advmix.yaml")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="dotted config overrides (e.g. data.train.num_images=64)")
    parser.add_argument("--checkpoint", help="the run's checkpoint.pt (pose model + generator) "
                        "or best.pt (pose model only); default: untrained generator")
    parser.add_argument("--num-images", type=int, default=4, help="crops (rows) in the grid")
    parser.add_argument("--seed", type=int, default=0, help="picks the crops and draws the views")
    parser.add_argument("--out", required=True, help="PNG file to write")
    add_device_argument(parser)
    parser.add_argument("--score-threshold", type=float, default=0.2,
                        help="predicted joints with a lower score are not drawn")


def _generator_state(path: Path) -> tuple[dict | None, int | None]:
    """(the generator's weights, the epoch) of a training checkpoint; (None, epoch or None)
    for a weights-only file."""
    from robustpose.models.checkpoint import read_checkpoint
    from robustpose.training.checkpoint import FORMAT

    data = read_checkpoint(path)
    if not isinstance(data, dict):
        return None, None
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    epoch = data.get("epoch", meta.get("epoch"))
    epoch = int(epoch) if isinstance(epoch, int) else None
    if data.get("format") == FORMAT:
        return (data.get("extra_modules") or {}).get("generator"), epoch
    return None, epoch


def _batch(split, num_images: int, seed: int) -> dict:
    """``num_images`` crops of the split, picked by ``seed``, collated."""
    import numpy as np
    from torch.utils.data import default_collate

    from robustpose.utils.seeding import derive_seed

    dataset = split.dataset
    rng = np.random.default_rng(derive_seed(seed, "advmix-preview", "crops"))
    picks = rng.permutation(len(dataset))
    items = []
    for index in picks:
        item = dataset[int(index)]
        if item["meta"]["valid"]:
            items.append(item)
        if len(items) == num_images:
            break
    if len(items) < num_images:
        raise ValueError(f"advmix-preview: the train split has only {len(items)} readable "
                         f"crops, --num-images is {num_images}")
    return default_collate(items)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from robustpose.codecs import InferenceSetting
    from robustpose.commands import CommandError
    from robustpose.config import build_model_for
    from robustpose.models import build_advmix_generator, load_checkpoint
    from robustpose.reports.advmix_preview import write_advmix_preview
    from robustpose.training import load_config
    from robustpose.training.datasets import build_codec_for, build_split
    from robustpose.training.methods import build_method
    from robustpose.utils.seeding import derive_seed

    if args.num_images < 1:
        raise CommandError(f"--num-images must be >= 1, got {args.num_images}")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise CommandError(f"{out}: --out must name a .png file")
    config = load_config(args.config, args.overrides)
    method = build_method(config)
    if method.name != "advmix":
        raise CommandError(f"{args.config}: train.method is {method.name!r}; advmix-preview "
                           f"needs an advmix config")
    if method.mixing not in WEIGHTED:
        raise CommandError(f"{args.config}: mixing {method.mixing!r} mixes no weighted views; "
                           f"advmix-preview draws {', '.join(WEIGHTED)}")
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    if checkpoint is not None and not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: --checkpoint not found")
    device = torch.device(resolve_device(args.device))

    codec = build_codec_for(config, method)
    split = build_split(config, "train", train=True, progress=False, codec=codec)
    spec = split.spec
    model = build_model_for(config, len(spec.keypoint_names))
    init_from = config["model"].get("init_from")
    state, epoch = _generator_state(checkpoint) if checkpoint is not None else (None, None)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, strict=True)
        pose_source = checkpoint.name + (f" (epoch {epoch})" if epoch is not None else "")
    elif init_from and Path(str(init_from)).is_file():
        load_checkpoint(model, init_from, strict=True)
        pose_source = f"{Path(str(init_from)).name} (model.init_from)"
    else:
        pose_source = "untrained (seeded init)"

    generator = None
    gen_source = ""
    if method.adversarial:
        w, h = config["data"]["input_size"]
        generator = build_advmix_generator(  # the generator a training run starts from
            (w, h), num_views=len(method.augs) + 1, ngf=method.ngf,
            activations=method.activations, image_level=method.mixing == "image",
            seed=derive_seed(int(config["seed"]), "advmix-generator"))
        if state is not None:
            try:
                generator.load_state_dict(state)
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0]
                raise ValueError(f"{checkpoint}: its generator does not fit the config's "
                                 f"(ngf {method.ngf}, {len(method.augs) + 1} views, {w}x{h}): "
                                 f"{first}") from None
            gen_source = f"generator: {checkpoint.name}"
        elif checkpoint is not None:
            gen_source = f"generator: UNTRAINED ({checkpoint.name} holds none)"
        else:
            gen_source = "generator: UNTRAINED (no --checkpoint)"
        generator = generator.to(device).eval()
    model = model.to(device).eval()

    batch = _batch(split, args.num_images, args.seed)
    images = batch["image"].to(device)
    method.rng = np.random.default_rng(derive_seed(args.seed, "advmix-preview", "views"))
    method.generator = generator
    with torch.no_grad():
        views, mixed, weights = method.mixed_input(images)
        outputs = model(mixed)
    n, v, _, h, w = views.shape
    if weights.dim() == 2:  # one weight per view and image (AdvMix-Image, Equal, Dirichlet)
        weights = weights[:, :, None, None].expand(n, v, h, w)
    coords, scores = codec.decode(outputs, InferenceSetting.from_config(config))
    frame_w, frame_h = codec.frame(outputs)
    pred = np.concatenate([coords * np.array([w / frame_w, h / frame_h], np.float32),
                           scores[..., None]], axis=-1)
    gt = batch["meta"]["joints"].numpy()
    names = ["clean"] + [VIEW_NAMES.get(type(a).__name__, type(a).__name__) for a in method.augs]
    ids = batch["meta"]["image_id"]
    ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
    flags = batch["meta"].get("stylized", [False] * n)
    labels = [f"image {i}" + (" (stylized)" if bool(s) else "") for i, s in zip(ids, flags)]
    title = (f"{config['name']}: mixing {method.mixing}, seed {args.seed}\n"
             f"pose model: {pose_source}" + (f"\n{gen_source}" if gen_source else ""))
    write_advmix_preview(out, views.cpu().numpy(), weights.cpu().numpy(), mixed.cpu().numpy(),
                         gt, pred, spec.skeleton, names, title=title, row_labels=labels,
                         score_threshold=args.score_threshold)
    print(f"wrote {out} ({n} crops x {2 * v + 1} panels; {pose_source}"
          + (f"; {gen_source}" if gen_source else "") + ")")
    mean = weights.float().mean(dim=(0, 2, 3)).tolist()  # what the generator favours, in one line
    print("mean mixing weight: " + ", ".join(f"{name} {m:.2f}" for name, m in zip(names, mean)))
    return 0
