"""ComfyUI set-up shared by ungrounded_overhead.py and end_to_end.py: the tiny random-weight Flux of the test
suite (tools/tiny_models.py), synthetic official-format InstanceAssemble weights, a dense layout encoded
and applied through the pack's own nodes, exactly as tests/comfy/test_flux_sampling.py runs them.

``setup()`` must run before anything imports ``comfy``: it puts ComfyUI first on ``sys.path`` (its ``nodes.py``
must win over this pack's ``nodes/``) and selects the CPU unless a CUDA run was asked for.
"""
import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


@dataclass
class FluxSetup:
    pack: object
    stock: object          # ModelPatcher
    clip: object
    weights: object        # InstanceAssembleWeights
    encoded: object        # EncodedLayout
    positive: list
    latent: object         # torch.Tensor [1, 16, H/8, W/8]
    width: int
    height: int

    def patched(self, grounding_ratio: float = 0.3, layout_scale: float = 1.0):
        from tools import pack_nodes
        return pack_nodes.apply(self.pack, self.stock, self.weights, self.encoded, layout_scale=layout_scale,
                                grounding_ratio=grounding_ratio)


def import_comfy(device: str = "cpu") -> None:
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    from tools.comfyui_path import import_comfyui
    import_comfyui(cpu=not device.startswith("cuda"))


def setup(boxes: int = 20, width: int = 512, height: int = 512, seed: int = 0, device: str = "cpu") -> FluxSetup:
    """Tiny Flux (hidden 64, 4 double + 2 single blocks, fp32), its weights, and ``boxes`` dense boxes."""
    import_comfy(device)
    import logging
    logging.disable(logging.WARNING)

    import comfy.utils
    from tools import official_weights, pack_nodes, sampling, tiny_models
    import torch
    from tools.comfyui_path import import_pack

    from bench_layouts import dense_layout

    comfy.utils.PROGRESS_BAR_ENABLED = False   # KSampler's tqdm bar
    pack = import_pack()
    cfg = tiny_models.FLUX_TINY
    stock = tiny_models.tiny_flux_patcher()
    clip = tiny_models.tiny_clip("flux")
    lora_sd, layout_sd = official_weights.make_official_weights(
        "flux", cfg["hidden_size"], cfg["vec_in_dim"], cfg["depth"], cfg["depth_single_blocks"], seed=11)
    folder = official_weights.write_official_folder(Path(tempfile.mkdtemp(prefix="ia_bench_")), lora_sd, layout_sd)
    weights = pack.instanceassemble_core.weights.load_weights(folder)
    layout_json = dense_layout(boxes, seed=seed, size=width).to_dict()
    layout = pack.instanceassemble_core.layout.parse_layout(layout_json, width=width, height=height)
    encoded = pack_nodes.encode(pack, clip, layout)
    positive = sampling.flux_conditioning(clip, "a dense scene with many objects")
    latent = torch.zeros(1, 16, height // 8, width // 8)
    return FluxSetup(pack, stock, clip, weights, encoded, positive, latent, width, height)


def comfy_bench_parser(description: str, default_rounds: int) -> argparse.ArgumentParser:
    """The options both ComfyUI benchmarks take."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--ratio", type=float, default=0.3, help="grounding ratio (default 0.3)")
    parser.add_argument("--boxes", type=int, default=20)
    parser.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    parser.add_argument("--rounds", type=int, default=default_rounds,
                        help=f"sampler runs per model (default {default_rounds})")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--clock", choices=("process", "wall"), default="process")
    parser.add_argument("--device", default="cpu")
    return parser


def prepare(args):
    """Set up ComfyUI and the models for parsed ``args``; returns (setup, clock, cuda, malloc_kept).

    The process clock measures one thread's compute whatever else runs on the machine; with CUDA or several
    threads it would not, so those runs use the wall clock."""
    import bench_measure

    kept = not args.device.startswith("cuda") and bench_measure.keep_freed_memory()
    env = setup(boxes=args.boxes, width=args.size, height=args.size, device=args.device)
    import torch

    if args.device == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    if args.clock == "process" and (cuda or torch.get_num_threads() > 1):
        args.clock = "wall"
    return env, (time.process_time if args.clock == "process" else time.perf_counter), cuda, kept
