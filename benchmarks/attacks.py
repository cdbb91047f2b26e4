"""Attack throughput (a benchmark, not a timed test): prints the ratios docs/attacks.md quotes.

1. one IGSM iteration (input gradient, sign step, projection) against one plain
   forward+backward (``loss.backward()``, weight gradients included) of the same model on
   the same batch: target <= 1.15x;
2. UAP fitting throughput (crops/s over one epoch);
3. SPSA queries/s against plain forward throughput (crops/s).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/attacks.py [--model shufflenetv2] [--batch 16]
"""
from __future__ import annotations

import argparse
import time

import torch


def _best(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    from robustpose.attacks import IGSM, SPSA, UAP
    from robustpose.losses import JointsMSELoss
    from robustpose.models import create_model

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="shufflenetv2")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", default="96x128", help="crop WxH")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    torch.manual_seed(0)
    model = create_model(args.model).to(args.device).eval()
    x = torch.rand(args.batch, 3, h, w, generator=torch.Generator().manual_seed(0)).to(args.device)
    with torch.no_grad():
        ref = model(x)
    weight = torch.ones(ref.shape[:2], device=args.device)
    loss = JointsMSELoss()

    def fwd_bwd() -> None:
        model.zero_grad(set_to_none=True)
        xi = x.clone().requires_grad_(True)
        loss(model(xi), ref + 0.01, weight).backward()

    atk = IGSM(model, eps=8, steps=1)
    target = ref + 0.01

    def igsm_iteration() -> None:
        adv = atk.step(x, target, weight, None, 0)
        atk.project(adv, x)

    t_fb, t_it = _best(fwd_bwd, args.repeats), _best(igsm_iteration, args.repeats)
    model.zero_grad(set_to_none=True)
    print(f"forward+backward {1e3 * t_fb:.1f} ms, one IGSM iteration {1e3 * t_it:.1f} ms: "
          f"ratio {t_it / t_fb:.3f} (target <= 1.15)")

    uap = UAP(model, eps=8, epochs=1, batch_size=args.batch)
    data = torch.cat([x, x.flip(3)])
    t_uap = _best(lambda: uap.fit(data), max(1, args.repeats // 2))
    print(f"UAP fitting: {len(data) / t_uap:.1f} crops/s ({len(data)} crops, 1 epoch)")

    def forward() -> None:
        with torch.no_grad():
            model(x)

    t_f = _best(forward, args.repeats)
    spsa = SPSA(model, eps=8, steps=1, samples=4, query_batch=args.batch)
    t_s = _best(lambda: spsa(x), max(1, args.repeats // 2))
    queries = args.batch * spsa.queries_used
    print(f"plain forward {args.batch / t_f:.1f} crops/s; SPSA {queries / t_s:.1f} queries/s "
          f"({spsa.queries_used} queries/crop): ratio {queries / t_s / (args.batch / t_f):.3f}")


if __name__ == "__main__":
    main()
