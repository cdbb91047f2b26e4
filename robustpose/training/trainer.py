"""The one training loop: model, optimizers, schedule, AMP, DDP, checkpoints, validation.

What a step computes belongs to the method object (robustpose/training/methods.py);
everything else lives here. Randomness: the trainer owns seeded generators (numpy
``np_rng``, torch ``torch_rng`` on CPU and ``cuda_rng`` on the GPU) that methods draw
from and that checkpoints save; shuffling is a DistributedSampler seeded from
``(seed, epoch)``; ``create_model`` initialises the weights on a forked RNG from a seed
derived from the config, so the global RNG is never touched.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from robustpose.training import checkpoint as ckpt
from robustpose.config import dump_config
from robustpose.models.rcc import rcc_meta
from robustpose.training.forward import PoseForward, _bare, _to_device, invalid_items
from robustpose.training.distributed import (DistInfo, all_reduce_mean, barrier, broadcast_object,
                                             gather_to_main, init_distributed, rank_zero_first)
from robustpose.training.logs import EpochLog
from robustpose.training.methods import TrainingMethod, build_method
from robustpose.training.optim import (Schedule, StepContext, follow_schedule, freeze_modules,
                                       make_scheduler, resolve_spec)
from robustpose.training.validation import predict_fn_for, validate
from robustpose.utils.io import atomic_write_text
from robustpose.utils.processes import loader_worker_options
from robustpose.utils.progress import show_progress
from robustpose.utils.seeding import derive_seed


#: steps between progress-bar loss updates (each reads one loss back from the device)
POSTFIX_EVERY = 20


class Trainer:
    """Train a pose model from an experiment config (see robustpose/config/experiment.py).

    Args:
        config: a loaded config (``load_config``).
        model, train_data, val_data: optional ready-made pieces (tests, notebooks);
            by default built from the config (``create_model``, ``build_split``).
            ``train_data`` / ``val_data`` are ``training.datasets.SplitData``-like
            objects with ``dataset``, ``spec`` and (val) ``metric_factory``.
        method: a TrainingMethod; by default ``build_method(config)``.
        device: 'cpu', 'cuda' or None (CUDA when available).
        predict_fn: ``predict_fn(model, images, metas, spec) -> (N, K, 3)`` for validation
            (default: ``codecs.predict_keypoints`` with the config's setting and codec).
        progress: show tqdm bars (rank 0 only).
    """

    def __init__(self, config: dict, *, model: nn.Module | None = None, train_data: Any = None,
                 val_data: Any = None, method: TrainingMethod | None = None,
                 device: str | None = None, predict_fn: Callable | None = None,
                 progress: bool = True, dist_info: DistInfo | None = None) -> None:
        self.config = config
        self.dist = dist_info or init_distributed(device)
        self.device = self.dist.device
        self.progress = progress
        seed = int(config["seed"])
        self.output_dir = Path(config["output_dir"] or Path("runs") / config["name"])
        rank = self.dist.rank
        self.np_rng = np.random.default_rng(derive_seed(seed, "trainer-numpy", rank))
        self.torch_rng = torch.Generator().manual_seed(derive_seed(seed, "trainer-torch", rank))
        self.cuda_rng = None
        if self.device.type == "cuda":
            self.cuda_rng = torch.Generator(device=self.device)
            self.cuda_rng.manual_seed(derive_seed(seed, "trainer-cuda", rank))

        self.train_data = train_data
        self.val_data = val_data
        if model is None:  # fail fast, before loading a large annotation file
            from robustpose.models import list_models
            if config["model"]["name"] not in list_models():
                raise ValueError(f"unknown model.name {config['model']['name']!r}; "
                                 f"choose from {', '.join(list_models())}")
        from robustpose.training.datasets import (build_codec_for, build_split,
                                                  inference_setting_for)
        # saved in best.pt's meta: decodes with the defaults of the codec built below
        self.inference = inference_setting_for(config, method)
        # one codec makes the targets of both splits and decodes validation; the method
        # may declare its own (TrainingMethod.codec_config), read before any split is built
        self.codec = (getattr(getattr(train_data, "dataset", None), "codec", None)
                      or build_codec_for(config, method))
        with rank_zero_first(self.dist):  # e.g. SynthPose renders its split once, on rank 0
            if self.train_data is None:
                self.train_data = build_split(config, "train", train=True,
                                              progress=progress and self.dist.is_main,
                                              codec=self.codec)
            if self.val_data is None and config["data"].get("val") and int(config["val"]["every"]):
                self.val_data = build_split(config, "val", train=False,  # only when used
                                            progress=progress and self.dist.is_main,
                                            codec=self.codec)
        self.predict_fn = predict_fn or predict_fn_for(config, self.codec)

        if model is None:
            model = self._create_model()
        self.model = model.to(self.device)
        self.num_joints = int(config["model"]["num_joints"] or len(self.train_data.spec.keypoint_names))
        self.forward: nn.Module = PoseForward(self.model)
        if self.dist.distributed:
            self.forward = DistributedDataParallel(
                self.forward, device_ids=[self.dist.local_rank] if self.device.type == "cuda" else None)
        self.amp = bool(config["train"]["amp"]) and self.device.type == "cuda"

        self.method = method or build_method(config)
        train = config["train"]
        model_opt, model_schedule = resolve_spec(self.make_optimizer(self.model), train, "model")
        self.optimizers: dict[str, torch.optim.Optimizer] = {"model": model_opt}
        self.schedules: dict[str, Schedule] = {"model": model_schedule}
        self.method.setup(self)
        for name, entry in self.method.extra_optimizers().items():
            if name == "model":
                raise ValueError("a method's extra optimizer cannot be named 'model'")
            self.optimizers[name], self.schedules[name] = resolve_spec(entry, train, name)
        self.frozen = freeze_modules(self.method.frozen_modules(), self.device, self.optimizers,
                                     trained=self.method.extra_modules())
        self.schedulers = {name: make_scheduler(opt, self.schedules[name])
                           for name, opt in self.optimizers.items()}
        self.scalers = {name: torch.amp.GradScaler("cuda", enabled=self.amp)
                        for name in self.optimizers}
        self.step = StepContext(self)
        self.start_epoch = 0
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ building
    def _create_model(self) -> nn.Module:
        """The config's model (seeded init), then ``model.pretrained`` (ImageNet backbone)
        or ``model.init_from`` (whole-model weights)."""
        from robustpose.config import build_model_for
        mcfg = self.config["model"]
        pretrained = mcfg["pretrained"]
        if pretrained is not None and not Path(str(pretrained)).is_file():
            raise FileNotFoundError(f"{pretrained}: model.pretrained (ImageNet weights) not found")
        model = build_model_for(self.config, len(self.train_data.spec.keypoint_names), pretrained)
        init_from = mcfg.get("init_from")
        if init_from is not None:  # whole-model weights to fine-tune or continue from
            if not Path(str(init_from)).is_file():
                raise FileNotFoundError(f"{init_from}: model.init_from (model weights) not found")
            from robustpose.models import load_checkpoint
            load_checkpoint(model, init_from, strict=True)
        return model

    def make_optimizer(self, module: nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
        """An optimizer like the model's (``train.optimizer``, weight decay, momentum) over
        ``module``'s trainable parameters, with learning rate ``lr`` (default ``train.lr``)."""
        train = self.config["train"]
        params = [p for p in module.parameters() if p.requires_grad]
        lr = float(train["lr"] if lr is None else lr)
        if train["optimizer"] == "adam":
            return torch.optim.Adam(params, lr=lr, weight_decay=float(train["weight_decay"]))
        return torch.optim.SGD(params, lr=lr, momentum=float(train["momentum"]),
                               weight_decay=float(train["weight_decay"]))

    def wrap_module(self, module: nn.Module) -> nn.Module:
        """Move a method's trainable module to the device; DDP-wrap it when distributed."""
        module = module.to(self.device)
        if self.dist.distributed:
            return DistributedDataParallel(
                module, device_ids=[self.dist.local_rank] if self.device.type == "cuda" else None)
        return module

    # ------------------------------------------------------------------ checkpoints
    def _rng_state(self) -> dict:
        return {"numpy": ckpt.numpy_rng_state(self.np_rng),
                "torch_cpu": self.torch_rng.get_state(),
                "torch_cuda": self.cuda_rng.get_state().cpu() if self.cuda_rng is not None else None}

    def state(self, epoch: int) -> dict:
        """Everything needed to resume after ``epoch`` finished epochs (plain types)."""
        rng_all = gather_to_main(self._rng_state(), self.dist)
        return {
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "meta": {"format": "robustpose", "kind": "training", "name": self.config["model"]["name"],
                     "num_joints": self.num_joints, "extra": self.config["model"]["extra"],
                     "epoch": int(epoch), "experiment": self.config["name"],
                     **rcc_meta(self.model)},  # the weight-free RCC layer, when present
            "config": {k: v for k, v in self.config.items() if not k.startswith("_")},
            "epoch": int(epoch),
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "scalers": {n: s.state_dict() for n, s in self.scalers.items()},
            "extra_modules": {n: _bare(m).state_dict() for n, m in self.method.extra_modules().items()},
            "method": self.method.state_dict(),
            "rng": {"world_size": self.dist.world_size, "ranks": rng_all},
        }

    def save(self, path: str | Path, epoch: int) -> None:
        """Write a checkpoint (rank 0 writes; every rank must call it: RNG states gather)."""
        state = self.state(epoch)
        if self.dist.is_main:
            ckpt.save_checkpoint(path, state)
        barrier(self.dist)

    def _save_weights(self, path: Path, epoch: int) -> None:
        """Model weights only (robustpose.models format), e.g. best.pt for ``robustpose test``."""
        from robustpose.models import save_checkpoint as save_weights
        save_weights(self.model, path, meta={
            "name": self.config["model"]["name"], "num_joints": self.num_joints,
            "epoch": int(epoch), "best_metric": self.best_metric, "experiment": self.config["name"],
            "inference": self.inference.to_dict(), "codec": self.codec.config(),
            # the task loss the weights were fitted with (robustpose attack's default loss)
            "train_loss": getattr(self.method, "loss_name", None)})

    def resume(self, path: str | Path) -> None:
        """Restore model, optimizers, schedules, scalers, method, RNG and epoch counters."""
        data = ckpt.load_checkpoint_file(path, map_location="cpu")
        try:
            self.model.load_state_dict(data["model"])
        except RuntimeError as exc:  # another architecture: pages of key lists otherwise
            raise ValueError(f"{path}: --resume checkpoint does not fit model "
                             f"{self.config['model']['name']!r} ({str(exc).splitlines()[0]})") from None
        for name, opt in self.optimizers.items():
            if name not in data["optimizers"]:
                raise ValueError(f"{path}: checkpoint has no state for optimizer {name!r}")
            opt.load_state_dict(data["optimizers"][name])
        for name, sched in self.schedulers.items():
            sched.load_state_dict(data["schedulers"][name])
            self._follow_config_schedule(name)
        for name, scaler in self.scalers.items():
            if data["scalers"].get(name):
                scaler.load_state_dict(data["scalers"][name])
        modules = self.method.extra_modules()
        for name, state in data.get("extra_modules", {}).items():
            if name not in modules:
                raise ValueError(f"{path}: checkpoint has a module {name!r} this method lacks")
            _bare(modules[name]).load_state_dict(state)
        self.method.load_state_dict(data.get("method", {}))
        rng = data["rng"]
        if rng["world_size"] == self.dist.world_size:
            mine = rng["ranks"][self.dist.rank]
            ckpt.restore_numpy_rng(self.np_rng, mine["numpy"])
            self.torch_rng.set_state(mine["torch_cpu"])
            if self.cuda_rng is not None and mine["torch_cuda"] is not None:
                self.cuda_rng.set_state(mine["torch_cuda"])
        self.start_epoch = int(data["epoch"])
        self.best_metric = data.get("best_metric")
        self.best_epoch = data.get("best_epoch")

    def _follow_config_schedule(self, name: str) -> None:
        """A resumed run follows the config's schedule (``train.lr_steps`` / ``lr_factor``,
        or the method's own for an extra optimizer): with the schedule unchanged this is a
        no-op (exact resume); a lengthened schedule (more epochs, later steps) gets a new
        scheduler at the same epoch, with the lr the new schedule gives after the epochs
        already done (public MultiStepLR API only; see optim.follow_schedule)."""
        schedule = self.schedules[name]
        sched = follow_schedule(self.schedulers[name], schedule)
        if sched is None:
            return
        self.schedulers[name] = sched
        if self.dist.is_main:
            label = "" if name == "model" else f" (optimizer {name!r})"
            print(f"resume{label}: following the config's schedule (lr steps "
                  f"{list(schedule.lr_steps)}, factor {schedule.lr_factor}): lr "
                  f"{sched.get_last_lr()[0]:g} after {sched.last_epoch} epochs", flush=True)

    # ------------------------------------------------------------------ loop
    def _train_loader(self, epoch: int) -> DataLoader:
        dataset: Dataset = self.train_data.dataset
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        seed = int(self.config["seed"])
        sampler = DistributedSampler(dataset, num_replicas=self.dist.world_size, rank=self.dist.rank,
                                     shuffle=True, seed=derive_seed(seed, "shuffle") % 2**31)
        sampler.set_epoch(epoch)
        workers = int(self.config["data"]["num_workers"])
        return DataLoader(dataset, batch_size=int(self.config["train"]["batch_size"]),
                          sampler=sampler, num_workers=workers,
                          pin_memory=self.device.type == "cuda", persistent_workers=False,
                          generator=torch.Generator().manual_seed(derive_seed(seed, "loader", epoch)),
                          **loader_worker_options(workers))

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One epoch of ``method.train_step``: mean losses (averaged over ranks) and the
        training throughput ``images_per_s`` (all ranks together, data loading included).

        Losses stay on the device during the epoch (summed in float64, so CPU logs equal a
        sum of Python floats); they are read once at the end, and for the progress bar
        every ``POSTFIX_EVERY`` steps only, so a GPU step never waits on a host copy."""
        self.forward.train()
        for module in self.frozen.values():  # a method's .train() must not reach a teacher
            module.eval()
        loader = self._train_loader(epoch)
        limit = self.config["train"]["max_iters_per_epoch"]
        total = min(len(loader), limit) if limit else len(loader)
        sums: dict[str, Any] = {}
        count = images = 0
        start = time.perf_counter()
        bar = tqdm(loader, total=total, desc=f"epoch {epoch + 1}", leave=False,
                   disable=not (show_progress(self.progress) and self.dist.is_main))
        skipped, problem = 0, ""  # unreadable items (zero weight): counted, never silent
        for it, batch in enumerate(bar):
            if limit and it >= limit:
                break
            bad, why = invalid_items(batch)
            skipped, problem = skipped + bad, problem or why
            values = self.method.train_step(self.forward, _to_device(batch, self.device), self.step)
            images += int(batch["image"].shape[0])
            for key, value in values.items():
                value = (value.detach().to(torch.float64) if isinstance(value, torch.Tensor)
                         else float(value))
                sums[key] = value if key not in sums else sums[key] + value
            count += 1
            if not bar.disable and (it % POSTFIX_EVERY == 0 or it + 1 == total):
                bar.set_postfix(loss=f"{float(values.get('loss', float('nan'))):.6f}")
        bar.close()
        out = {k: all_reduce_mean(float(v) / max(count, 1), self.dist) for k, v in sums.items()}
        rate = images / max(time.perf_counter() - start, 1e-9)  # this rank's images/s
        out["images_per_s"] = all_reduce_mean(rate, self.dist) * self.dist.world_size
        out["skipped_images"] = all_reduce_mean(skipped, self.dist) * self.dist.world_size
        if out["skipped_images"] >= all_reduce_mean(images, self.dist) * self.dist.world_size:
            raise ValueError(f"epoch {epoch + 1}: no training image could be read "
                             f"({int(out['skipped_images'])} skipped; {problem or 'empty split'})")
        return out

    def validate(self, desc: str = "val") -> dict[str, float] | None:
        """Validation metrics (rank 0; None elsewhere or without a val split/metric)."""
        if self.val_data is None or self.val_data.metric_factory is None:
            return None
        val = self.config["val"]
        stats, _ = validate(self.model, self.val_data.dataset, self.val_data.spec,
                            self.val_data.metric_factory, self.dist,
                            batch_size=int(val["batch_size"]), predict_fn=self.predict_fn,
                            num_workers=int(self.config["data"]["num_workers"]),
                            progress=self.progress, desc=desc)
        return stats

    def _best_key(self, stats: dict[str, float]) -> str | None:
        key = self.config["val"]["best_key"]
        if key:
            return key if key in stats else None
        return next((k for k in ("AP", "PCKh", "Mean", "PCK", "AUC") if k in stats), None)

    def fit(self) -> list[dict[str, Any]]:
        """Train from ``start_epoch`` to ``train.epochs``; returns the epoch log rows."""
        cfg = self.config
        epochs, every = int(cfg["train"]["epochs"]), int(cfg["val"]["every"])
        log = EpochLog(self.output_dir, enabled=self.dist.is_main)
        if self.dist.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.output_dir / "config.yaml", dump_config(cfg))
        for epoch in range(self.start_epoch, epochs):
            start = time.perf_counter()
            lrs = {"lr" if name == "model" else f"lr_{name}": opt.param_groups[0]["lr"]
                   for name, opt in self.optimizers.items()}
            losses = self.train_epoch(epoch)
            for sched in self.schedulers.values():
                sched.step()
            row: dict[str, Any] = {"epoch": epoch + 1, **lrs,
                                   **{f"train_{k}": v for k, v in losses.items()},
                                   "train_time_s": round(time.perf_counter() - start, 3)}
            is_best = False
            if every and ((epoch + 1) % every == 0 or epoch + 1 == epochs):
                stats = self.validate(desc=f"val {epoch + 1}")
                stats = broadcast_object(stats, self.dist)
                if stats:
                    row.update({f"val_{k}": v for k, v in stats.items()})
                    key = self._best_key(stats)
                    if key is not None and (self.best_metric is None or stats[key] > self.best_metric):
                        self.best_metric, self.best_epoch, is_best = stats[key], epoch + 1, True
            log.log(row)
            self.history.append(row)
            if self.dist.is_main:
                tqdm.write(" ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                                    for k, v in row.items()))
            ckpt_every = int(cfg["train"]["checkpoint_every"] or 0)
            if is_best or (ckpt_every and (epoch + 1) % ckpt_every == 0) or epoch + 1 == epochs:
                self.save(self.output_dir / "checkpoint.pt", epoch + 1)
                if is_best and self.dist.is_main:
                    self._save_weights(self.output_dir / "best.pt", epoch + 1)
        log.close()
        return self.history
