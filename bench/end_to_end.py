#!/usr/bin/env python3
"""A full KSampler run through ComfyUI with and without the patch: tiny Flux, 28 steps, grounding ratio 0.3
(steps 0–7 grounded), a 20-box dense layout applied by the pack's own nodes.

Each run is ComfyUI's ``KSampler`` node (``nodes.KSampler().sample``: euler, simple, cfg 1.0) on a 512 × 512 image;
stock and patched runs alternate, the ratio is median(patched) / median(stock). The per-grounded-step cost of the
branch is derived from the two medians. Timing: process CPU time with one torch thread by default (robust when
other processes share the CPU), glibc malloc keeping freed memory (no page-fault noise); ``--clock wall
--threads N`` for wall-clock; ``--device cuda`` for the GPU.
"""
import statistics
import sys

from . import bench_measure
from .bench_comfy import comfy_bench_parser, prepare


def main(argv=None) -> int:
    args = comfy_bench_parser(__doc__, default_rounds=5).parse_args(argv)
    env, clock, device, kept = prepare(args)
    import torch
    import nodes as comfy_nodes

    patched = env.patched(env.encode(args.boxes), grounding_ratio=args.ratio)
    latent = {"samples": env.latent}
    sampler = comfy_nodes.KSampler()

    def run(model):
        seconds, out = bench_measure.timed(lambda: sampler.sample(model, 7, args.steps, 1.0, "euler", "simple",
                                                                  env.positive, env.positive, latent)[0],
                                           device, clock)
        return seconds, out["samples"]

    _, stock_latent = run(env.stock)       # warm-up, and the outputs for a sanity check
    _, patched_latent = run(patched)
    if not torch.isfinite(patched_latent).all() or torch.equal(patched_latent, stock_latent):
        print("FAIL: the patched run did not change the result (or produced non-finite values)")
        return 1
    times = {"stock": [], "patched": []}
    for round_index in range(args.rounds):
        order = ("stock", "patched") if round_index % 2 == 0 else ("patched", "stock")
        for name in order:
            times[name].append(run(env.stock if name == "stock" else patched)[0])
    stock_t, patched_t = statistics.median(times["stock"]), statistics.median(times["patched"])
    grounded = int(args.ratio * args.steps)

    print(f"# end_to_end  torch {torch.__version__}  device {args.device}  threads {torch.get_num_threads()}  "
          f"{clock} clock{'  malloc keeps freed memory' if kept else ''}")
    print(f"# KSampler (euler, simple, cfg 1.0), tiny Flux, {args.size}x{args.size} px "
          f"({(args.size // 16) ** 2} image tokens), {args.boxes} boxes, {args.steps} steps, ratio {args.ratio} "
          f"({grounded} grounded steps); {args.rounds} interleaved runs per model")
    print(f"stock    run: median {stock_t:8.3f} s   (runs: {', '.join(f'{t:.2f}' for t in times['stock'])})")
    print(f"patched  run: median {patched_t:8.3f} s   (runs: {', '.join(f'{t:.2f}' for t in times['patched'])})")
    print(f"ratio patched/stock: {patched_t / stock_t:.3f}")
    if grounded:
        step = stock_t / args.steps
        extra = (patched_t - stock_t) / grounded
        print(f"branch cost per grounded step: {extra * 1e3:.1f} ms on a {step * 1e3:.1f} ms stock step "
              f"(×{(step + extra) / step:.2f} on grounded steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
