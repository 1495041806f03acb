#!/usr/bin/env python3
"""A/B measurement of a proposed core change: the pack's branch (b) vs the private variant in
bench/proposed_assemble.py (b'), with the stock block (c) as calibration, interleaved in one run.

Prints per layout: times, each branch's (·)/(c) ÷ FLOP floor quotient, the speed-up b/b', peak memory of both
relative to (c), the padded attention work of both chunkings relative to the floor Σ(1 + n_k)², and the
agreement of b' with the loop baseline (a) (float32). The deliverable benchmarks use the real core; this script
only supports the change proposed in bench/README.md.
"""
import argparse
import functools
import sys
import types
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent)]
import bench_measure as measure  # noqa: E402

import torch  # noqa: E402

import bench_flops as flops  # noqa: E402
import proposed_assemble  # noqa: E402
from bench_case import make_case  # noqa: E402
from instance_attention import KINDS, LARGE_SIDES, block_label, build_block, configs  # noqa: E402
from instanceassemble_core import assemble as core_assemble  # noqa: E402
from bench_layouts import demo_workloads, dense_workload  # noqa: E402


def padded_attention(batch) -> int:
    """Σ over chunks of Kc · (1 + width)², the attention work actually done (in units of token pairs)."""
    total = 0
    for chunk in batch.chunks:
        width = (chunk.slots.shape[1] + 1) if hasattr(chunk, "slots") else chunk.gather.shape[1]
        total += len(chunk.instances) * width ** 2
    return total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", default=",".join(KINDS))
    parser.add_argument("--ks", default="20,100")
    parser.add_argument("--large", action="store_true", help="add the K=100 large-box layout (no loop check there)")
    parser.add_argument("--demo", action="store_true", help="add the official demo layouts")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--stat", choices=("median", "min"), default="median")
    parser.add_argument("--no-inplace-lora", action="store_true", help="b' keeps the core's with_deltas")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", choices=("full", "small"), default="full")
    parser.add_argument("--dim", type=int)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: stable on a shared machine)")
    parser.add_argument("--clock", choices=("wall", "process"), default="process",
                        help="CPU timing clock (default process CPU time; wall on CUDA)")
    parser.add_argument("--max-padding", type=float, default=1.25, help="proposed chunking: padding bound")
    args = parser.parse_args(argv)
    args.rank = None
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    grid = (16, 16) if args.size == "small" else (64, 64)
    wrap = core_wrap = None
    from instanceassemble_core.lora import with_deltas
    core_wrap = with_deltas
    wrap = core_wrap if args.no_inplace_lora else proposed_assemble.with_deltas_inplace
    proposal = types.SimpleNamespace(
        build_instance_batch=functools.partial(proposed_assemble.build_instance_batch, max_padding=args.max_padding),
        InstanceRope=proposed_assemble.InstanceRope, joint_block_branch=proposed_assemble.joint_block_branch,
        single_block_branch=proposed_assemble.single_block_branch)
    print(f"# compare_core: (b) core, (b') bench/proposed_assemble.py"
          f"{'' if args.no_inplace_lora else ' + in-place with_deltas'}, (c) stock; {args.stat} of {args.repeats} "
          f"interleaved rounds, threads {torch.get_num_threads()}, "
          f"clock {args.clock}, max_padding {args.max_padding}")
    for kind in [k for k in args.blocks.split(",") if k]:
        cfg = configs(args)[kind]
        rank = max(4, cfg.dim // 48)
        block = build_block(kind, cfg, rank, 0).to(device)
        print(f"\n## {block_label(kind, cfg)}")
        print(f"{'layout':<18}{'(b) ms':>9}{'(b′) ms':>9}{'(c) ms':>9}{'b/b′':>7} |{'q(b)':>6}{'q(b′)':>7} |"
              f"{'mem b':>7}{'mem b′':>8} |{'attn b':>8}{'attn b′':>8} |{'err(a,b′)':>10}")
        rows = [dense_workload(int(k), grid, seed=int(k)) for k in args.ks.split(",") if k]
        if args.large:
            rows.append(dense_workload(100, grid, seed=1000, side=LARGE_SIDES, tag="-large"))
        if args.demo:
            rows.extend(demo_workloads(grid))
        for workload in rows:
            old = make_case(block, workload, cfg.txt, device=device)
            new = make_case(block, workload, cfg.txt, device=device, core=proposal, wrap=wrap)
            error = (float("nan") if workload.name.startswith("dense-large")
                     else new.compare(new.run_loop(), new.run_branch()))
            old.run_branch(), old.run_stock()
            memory = {name: measure.peak_bytes(fn, device)
                      for name, fn in (("b", old.run_branch), ("b2", new.run_branch), ("c", old.run_stock))}
            samples = measure.interleaved({"b": old.run_branch, "b2": new.run_branch, "c": old.run_stock}, device,
                                          args.repeats, clock=args.clock)
            t = {name: measure.summarize(s, args.stat) for name, s in samples.items()}
            p = flops.predictions(block.kind, cfg.dim, rank, grid[0] * grid[1], cfg.txt, workload.sizes,
                                  workload.union)
            floor = p["b"] / p["c"]
            floor_pairs = sum((n + 1) ** 2 for n in workload.sizes)
            old_batch = core_assemble.build_instance_batch(workload.token_indices, workload.rows)
            new_batch = proposal.build_instance_batch(workload.token_indices, workload.rows)
            print(f"{workload.name:<18}{t['b'] * 1e3:9.1f}{t['b2'] * 1e3:9.1f}{t['c'] * 1e3:9.1f}"
                  f"{t['b'] / t['b2']:7.2f} |{t['b'] / t['c'] / floor:6.2f}{t['b2'] / t['c'] / floor:7.2f} |"
                  f"{memory['b'] / memory['c']:7.2f}{memory['b2'] / memory['c']:8.2f} |"
                  f"{padded_attention(old_batch) / floor_pairs:8.2f}{padded_attention(new_batch) / floor_pairs:8.2f} |"
                  f"{error:10.1e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
