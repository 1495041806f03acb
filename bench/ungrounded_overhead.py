#!/usr/bin/env python3
"""Cost of an ungrounded step: the patched model after the grounding window vs the stock model, through ComfyUI.

The tiny Flux of the test suite (hidden 64, 4 double + 2 single blocks) samples a 512 × 512 image (1024 image
tokens) with a 20-box layout applied by the pack's own nodes (grounding ratio 0.3: steps 0–7 of 28 grounded).
A timing sampler (bench_comfy.sample_steps: a real ComfyUI ``KSAMPLER`` run by ``comfy.sample.sample_custom``, so
the pack's sampler, predict-noise and apply-model wrappers and block replacements all run as in a KSampler) times
every model evaluation. Stock and patched sampler runs alternate; the ratio is the median patched ungrounded-step
time over the median stock time at the same steps. Before timing, the script replays the stock trajectory through
the patched model and checks that exactly the first int(ratio · steps) outputs differ from the stock model's and
the others equal them bit for bit.

Timing: process CPU time with one torch thread by default (robust when other processes share the CPU), glibc malloc
keeping freed memory (bench_measure.keep_freed_memory: no page-fault noise);
``--clock wall --threads N`` for wall-clock; ``--device cuda`` runs on the GPU (wall clock, synchronised).
"""
import statistics
import sys

from .bench_comfy import comfy_bench_parser, prepare, sample_steps

TARGET = 1.02


def main(argv=None) -> int:
    args = comfy_bench_parser(__doc__, default_rounds=15).parse_args(argv)
    env, clock, device, kept = prepare(args)
    import torch
    import comfy.samplers
    torch.set_grad_enabled(False)

    stock = env.stock
    patched = env.patched(env.encode(args.boxes), grounding_ratio=args.ratio)
    sigmas = comfy.samplers.calculate_sigmas(stock.get_model_object("model_sampling"), "simple", args.steps)
    grounded_steps = int(args.ratio * args.steps)

    def run(model, inputs=None) -> dict:
        return sample_steps(env, model, sigmas, clock, device, inputs=inputs)

    # 1. on the stock trajectory, exactly the first int(ratio · steps) outputs differ from the stock model's
    stock_run = run(stock)
    patched_out = run(patched, inputs=stock_run["inputs"])["outputs"]
    changed = [not torch.equal(p, s) for p, s in zip(patched_out, stock_run["outputs"])]
    if changed != [True] * grounded_steps + [False] * (args.steps - grounded_steps):
        print(f"FAIL: steps whose output differs from the stock model's: {changed}")
        return 1

    # 2. per-evaluation times, stock and patched sampler runs alternating (the runs above were the warm-up)
    runs = {"stock": [], "patched": []}
    for round_index in range(args.rounds):
        order = ("stock", "patched") if round_index % 2 == 0 else ("patched", "stock")
        for name in order:
            runs[name].append(run(stock if name == "stock" else patched)["seconds"])

    def step_times(name, steps):
        return [run[i] for run in runs[name] for i in steps]

    ungrounded = range(grounded_steps, args.steps)
    grounded_range = range(grounded_steps)
    stock_u, patched_u = statistics.median(step_times("stock", ungrounded)), statistics.median(
        step_times("patched", ungrounded))
    ratio = patched_u / stock_u
    # the same ratio, per round (patched / stock medians of that round), to show the spread
    per_round = sorted(statistics.median([r[i] for i in ungrounded]) / statistics.median([s[i] for i in ungrounded])
                       for r, s in zip(runs["patched"], runs["stock"]))

    print(f"# ungrounded_overhead  torch {torch.__version__}  device {args.device}  threads "
          f"{torch.get_num_threads()}  {clock} clock{'  malloc keeps freed memory' if kept else ''}")
    print(f"# tiny Flux, {args.size}x{args.size} px ({(args.size // 16) ** 2} image tokens), {args.boxes} boxes, "
          f"{args.steps} steps, ratio {args.ratio}: steps 0-{grounded_steps - 1} grounded, "
          f"{args.steps - grounded_steps} ungrounded; {args.rounds} interleaved sampler runs per model")
    print("# checked: on the stock trajectory, grounded steps change the output, ungrounded ones are bit-identical")
    print(f"stock    ungrounded step: median {stock_u * 1e3:8.3f} ms  ({len(step_times('stock', ungrounded))} samples)")
    print(f"patched  ungrounded step: median {patched_u * 1e3:8.3f} ms  "
          f"({len(step_times('patched', ungrounded))} samples)")
    print(f"ratio patched/stock (ungrounded): {ratio:.4f}  (overhead {(patched_u - stock_u) * 1e6:+.0f} µs per step; "
          f"per-round ratios {per_round[0]:.3f} … {per_round[-1]:.3f})  target ≤ {TARGET}  "
          f"{'ok' if ratio <= TARGET else 'MISSED'}")
    if grounded_steps:
        stock_g = statistics.median(step_times("stock", grounded_range))
        patched_g = statistics.median(step_times("patched", grounded_range))
        print(f"for reference, grounded step: stock {stock_g * 1e3:.3f} ms, patched {patched_g * 1e3:.3f} ms, "
              f"ratio {patched_g / stock_g:.3f}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
