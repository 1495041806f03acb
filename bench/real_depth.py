#!/usr/bin/env python3
"""The branch's cost as a user's sampler sees it: ComfyUI's own Flux at the real depth (19 double + 38 single
blocks), one real sampler step, patched grounded / patched ungrounded / stock on the same model.

Models (random weights, built through ComfyUI's classes by ``tools.tiny_models.tiny_flux_patcher``, float32):
  D = 768 (6 heads, head_dim 128) at 512 × 512 px (1024 image tokens),
  D = 384 (3 heads, head_dim 128) at 1024 × 1024 px (4096 image tokens);
Flux's RoPE axes 16/56/56, MLP ratio 4, the tiny T5 of the test kit (256 text tokens), LoRA rank D/48 on the
official layout blocks (double 0, 3, …, 18 and single 0). Layouts: K dense boxes (bench_layouts.dense_layout,
sides 2–40 % of the image side) encoded and applied by the pack's own nodes.

One step: ``bench_comfy.sample_steps`` on a 2-step ``simple`` schedule with grounding ratio 0.5 evaluates step 0
(grounded) or step 1 (ungrounded) through ``comfy.sample.sample_custom``. Variants are interleaved round by round
(order rotated), one torch thread, process clock; the minimum over the rounds is reported (on a shared machine
other processes only ever add time).

Two overheads per row. ``step``: grounded step ÷ stock step − 1, whole steps of 10–40 s timed apart (on a shared
machine their ratio moves by several per cent from round to round). ``split``: inside each grounded step the pack's
block replacements are timed, their stock part (``original_block``) apart from the branch; split = Σ branch ÷
(step − Σ branch). The two parts alternate every block (well under a second), so other processes slow both alike.

FLOP floor (bench_flops, 2 per multiply-add, GEMMs and attention): stock = the 57 blocks; branch = the floor (b)
of the per-block benchmark in every layout block. ``meas ÷ floor`` = measured grounded overhead ÷ floor overhead.
"""
import argparse
import datetime
import sys

from . import bench_flops as flops
from . import bench_measure
from .bench_comfy import sample_steps, setup

QUOTIENT_TARGET = 1.3
UNGROUNDED_TARGET = 1.02
MODELS = {  # name: (hidden width, heads, image side in px)
    "768": (768, 6, 512),
    "384": (384, 3, 1024),
}


def flux_config(width: int, heads: int) -> dict:
    from tools.tiny_models import FLUX_TINY
    return dict(FLUX_TINY, hidden_size=width, num_heads=heads, depth=19, depth_single_blocks=38,
                axes_dim=[16, 56, 56])


def floor_overhead(cfg: dict, rank: int, img: int, txt: int, sizes: list[int], union: int,
                   double_blocks: int, single_blocks: int) -> float:
    """FLOPs of the branch floor in the layout blocks ÷ FLOPs of the stock blocks."""
    dim = cfg["hidden_size"]
    stock = (cfg["depth"] * flops.stock_joint(dim, img, txt)
             + cfg["depth_single_blocks"] * flops.stock_single(dim, img, txt))
    branch = (double_blocks * flops.joint_branch(dim, rank, img, sizes, union)
              + single_blocks * flops.single_branch(dim, rank, sizes, union, False))
    return branch / stock


class BlockTimer:
    """Wraps one of the pack's block replacements: accumulates its whole time and its stock part."""

    def __init__(self, patch, clock: str, device):
        self.patch, self.clock, self.device = patch, clock, device
        self.total = self.stock = 0.0

    def __call__(self, args: dict, extra: dict) -> dict:
        original = extra["original_block"]

        def timed_original(block_args):
            seconds, out = bench_measure.timed(lambda: original(block_args), self.device, self.clock)
            self.stock += seconds
            return out

        seconds, out = bench_measure.timed(lambda: self.patch(args, {**extra, "original_block": timed_original}),
                                           self.device, self.clock)
        self.total += seconds
        return out


def with_block_timers(model, clock: str, device):
    """A clone of the patched ``model`` whose block replacements are timed; returns (clone, timers)."""
    timed = model.clone()
    timers = []
    for (kind, index), patch in list(timed.model_options["transformer_options"]["patches_replace"]["dit"].items()):
        timers.append(BlockTimer(patch, clock, device))
        timed.set_model_patch_replace(timers[-1], "dit", kind, index)
    return timed, timers


def measure_model(name: str, ks: list[int], rounds: int, clock: str) -> list[dict]:
    import torch
    width, heads, side = MODELS[name]
    cfg, rank = flux_config(width, heads), width // 48
    env = setup(width=side, height=side, cfg=cfg, rank=rank)   # imports ComfyUI
    import comfy.samplers
    from instanceassemble_core.geometry import box_token_indices

    device = torch.device("cpu")
    sigmas = comfy.samplers.calculate_sigmas(env.stock.get_model_object("model_sampling"), "simple", 2)
    grid = (side // 16, side // 16)
    txt = int(env.positive[0][0].shape[1])
    encoded = {k: env.encode(k) for k in ks}
    patched = {k: env.patched(encoded[k], grounding_ratio=0.5) for k in ks}

    def step(model, index):
        return lambda: sample_steps(env, model, sigmas, clock, device, steps=[index])["seconds"][0]

    def split_step(k, index, key):
        model, timers = with_block_timers(patched[k], clock, device)

        def run():
            for timer in timers:
                timer.total = timer.stock = 0.0
            seconds = step(model, index)()
            branch = sum(timer.total - timer.stock for timer in timers)
            splits[key].append(branch / (seconds - branch))
            return seconds
        return run

    splits = {key: [] for key in [*ks, "ungrounded"]}
    variants = {"stock": step(env.stock, 0), "ungrounded": split_step(ks[0], 1, "ungrounded")}
    variants.update({f"K={k}": split_step(k, 0, k) for k in ks})
    for run in (variants["stock"], variants[f"K={ks[-1]}"]):   # warm-up: the allocator's pages, the caches
        run()
    samples = {name: [] for name in variants}
    names = list(variants)
    for round_index in range(rounds):
        for variant in names[round_index % len(names):] + names[:round_index % len(names)]:
            samples[variant].append(variants[variant]())
    best = {variant: bench_measure.summarize(times, "min") for variant, times in samples.items()}

    rows = []
    for k in ks:
        tokens = box_token_indices(encoded[k].samples, *grid)
        sizes = [int(t.numel()) for t in tokens]
        union = int(torch.unique(torch.cat(tokens)).numel())
        floor = floor_overhead(cfg, rank, grid[0] * grid[1], txt, sizes, union,
                               len(env.weights.double_layout_blocks), len(env.weights.single_layout_blocks))
        rows.append(dict(model=name, width=width, heads=heads, side=side, tokens=grid[0] * grid[1], k=k,
                         sum_n=sum(sizes), union=union, stock=best["stock"], grounded=best[f"K={k}"],
                         ungrounded=best["ungrounded"], split=min(splits[k]), ungrounded_split=min(splits["ungrounded"]),
                         floor=floor))
    del env, patched
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="768,384", help="comma-separated: 768 (512² px), 384 (1024² px)")
    parser.add_argument("--ks", default="1,5,20,50,100")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds after one warm-up (default 3)")
    parser.add_argument("--clock", choices=("process", "wall"), default="process")
    args = parser.parse_args(argv)
    kept = bench_measure.keep_freed_memory()
    import torch
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    ks = [int(k) for k in args.ks.split(",")]
    rows = [row for name in args.models.split(",") for row in measure_model(name, ks, args.rounds, args.clock)]

    print(f"# real_depth  {datetime.date.today()}  torch {torch.__version__}  threads 1  {args.clock} clock"
          f"{'  malloc keeps freed memory' if kept else ''}  min of {args.rounds} interleaved rounds")
    print("# ComfyUI Flux, 19 double + 38 single blocks, fp32, one sampler step; times in s; overheads vs stock")
    print("# overheads: step = grounded step / stock step - 1; split = branch / rest inside the grounded step; "
          "ungrounded: step ratio, and 1 + split (the block replacements' own time) of the ungrounded step")
    print(f"{'D':>4} {'image':>9} {'K':>4} {'Σn':>6} {'|∪|':>5} | {'stock':>7} {'grounded':>8} {'ungr.':>7} | "
          f"{'floor':>7} {'step':>7} {'split':>7} | {'step÷floor':>10} {'split÷floor':>11} | "
          f"{'ungr. step':>10} {'ungr. split':>11}")
    failed = []
    for r in rows:
        step = r["grounded"] / r["stock"] - 1
        ungrounded = 1 + r["ungrounded_split"]
        if r["split"] / r["floor"] > QUOTIENT_TARGET or ungrounded > UNGROUNDED_TARGET:
            failed.append(r)
        print(f"{r['width']:>4} {r['side']:>4}x{r['side']:<4} {r['k']:>4} {r['sum_n']:>6} {r['union']:>5} | "
              f"{r['stock']:>7.2f} {r['grounded']:>8.2f} {r['ungrounded']:>7.2f} | {r['floor']:>+7.1%} "
              f"{step:>+7.1%} {r['split']:>+7.1%} | {step / r['floor']:>10.2f} {r['split'] / r['floor']:>11.2f} | "
              f"{r['ungrounded'] / r['stock']:>10.3f} {ungrounded:>11.4f}")
    print(f"targets: split÷floor ≤ {QUOTIENT_TARGET}, ungrounded split ≤ {UNGROUNDED_TARGET}× stock: "
          f"{'ok' if not failed else f'MISSED on {len(failed)} row(s)'}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
