"""ComfyUI set-up shared by the benchmarks that run through ComfyUI: a random-weight Flux built through ComfyUI's
classes by the kit in ``tools/`` (the tiny one of the test suite, or a custom config), synthetic official-format
InstanceAssemble weights, a dense layout encoded and applied through the pack's own nodes, and a timing sampler.

``setup()`` must run before anything imports ``comfy``: ``tools.comfyui_path.import_comfyui`` puts ComfyUI first
on ``sys.path`` (its ``nodes.py`` must win over this pack's ``nodes/``) and selects the CPU unless a CUDA run was
asked for. Run the scripts from the repository root as ``python -m bench.<script>``.
"""
import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import bench_measure
from .bench_layouts import dense_layout


@dataclass
class FluxSetup:
    pack: object
    stock: object          # ModelPatcher
    clip: object
    weights: object        # InstanceAssembleWeights
    positive: list
    latent: object         # torch.Tensor [1, 16, H/8, W/8]
    width: int
    height: int

    def encode(self, boxes: int, seed: int = 0):
        """An EncodedLayout of ``boxes`` dense boxes (bench_layouts.dense_layout), through the pack's encode node."""
        layout_json = dense_layout(boxes, seed=seed, size=self.width).to_dict()
        layout = self.pack.instanceassemble_core.layout.parse_layout(layout_json, width=self.width, height=self.height)
        return self.pack.nodes.encode.InstanceAssembleLayoutEncode().encode(self.clip, layout)[0]

    def patched(self, encoded, grounding_ratio: float = 0.3, layout_scale: float = 1.0):
        """The stock model with ``encoded`` applied by the pack's apply node."""
        return self.pack.nodes.apply.InstanceAssembleApply().apply(self.stock, self.weights, encoded, layout_scale,
                                                                  grounding_ratio)[0]


def import_comfy(device: str = "cpu") -> None:
    from tools.comfyui_path import import_comfyui
    import_comfyui(cpu=not device.startswith("cuda"))


def setup(width: int = 512, height: int = 512, device: str = "cpu", cfg: Optional[dict] = None,
          rank: int = 4) -> FluxSetup:
    """A fp32 Flux of config ``cfg`` (default: the kit's tiny Flux, hidden 64, 4 double + 2 single blocks), its
    InstanceAssemble weights with LoRA rank ``rank``, and a text conditioning."""
    import_comfy(device)
    import logging
    logging.disable(logging.WARNING)

    import comfy.utils
    import node_helpers
    import torch
    from tools import official_weights, tiny_models
    from tools.comfyui_path import import_pack

    comfy.utils.PROGRESS_BAR_ENABLED = False   # KSampler's tqdm bar
    pack = import_pack()
    cfg = cfg or tiny_models.FLUX_TINY
    stock = tiny_models.tiny_flux_patcher(cfg=cfg)
    clip = tiny_models.tiny_clip("flux")
    lora_sd, layout_sd = official_weights.make_official_weights(
        "flux", cfg["hidden_size"], cfg["vec_in_dim"], cfg["depth"], cfg["depth_single_blocks"], rank=rank, seed=11)
    folder = official_weights.write_official_folder(Path(tempfile.mkdtemp(prefix="ia_bench_")), lora_sd, layout_sd)
    weights = pack.instanceassemble_core.weights.load_weights(folder)
    positive = node_helpers.conditioning_set_values(
        clip.encode_from_tokens_scheduled(clip.tokenize("a dense scene with many objects")), {"guidance": 3.5})
    latent = torch.zeros(1, 16, height // 8, width // 8)
    return FluxSetup(pack, stock, clip, weights, positive, latent, width, height)


def sample_steps(env: FluxSetup, model, sigmas, clock: str, device, steps=None, inputs=None) -> dict:
    """One ComfyUI sampler call (``comfy.sample.sample_custom`` with an Euler ``KSAMPLER``, so the pack's sampler,
    predict-noise and apply-model wrappers and block replacements run as in a KSampler), timing every model
    evaluation with ``bench_measure.timed``.

    steps: the step indices to evaluate (default all; a skipped step leaves x unchanged). inputs: per step, the
    noisy input to evaluate instead of the sampler's own x (a replay of another model's trajectory).
    Returns {"inputs", "outputs", "seconds"}, one entry per evaluated step.
    """
    import comfy.sample
    import comfy.samplers
    record = {"inputs": [], "outputs": [], "seconds": []}

    def sampler_function(model_fn, x, sigmas, extra_args=None, callback=None, disable=None):
        ones = x.new_ones([x.shape[0]])
        for i in range(len(sigmas) - 1) if steps is None else steps:
            x_in = x if inputs is None else inputs[i].to(x)
            seconds, denoised = bench_measure.timed(lambda: model_fn(x_in, sigmas[i] * ones, **(extra_args or {})),
                                                    device, clock)
            record["inputs"].append(x_in.clone())
            record["outputs"].append(denoised)
            record["seconds"].append(seconds)
            if callback is not None:
                callback({"i": i, "denoised": denoised, "x": x})
            x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
        return x

    noise = comfy.sample.prepare_noise(env.latent, 0)
    comfy.sample.sample_custom(model, noise, 1.0, comfy.samplers.KSAMPLER(sampler_function), sigmas, env.positive,
                               env.positive, env.latent, disable_pbar=True, seed=0)
    return record


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
    """Set up ComfyUI and the models for parsed ``args``; returns (setup, clock, device, malloc_kept).

    The process clock measures one thread's compute whatever else runs on the machine; with CUDA or several
    threads it would not, so those runs use the wall clock."""
    kept = not args.device.startswith("cuda") and bench_measure.keep_freed_memory()
    env = setup(width=args.size, height=args.size, device=args.device)
    import torch

    if args.device == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.clock == "process" and (device.type == "cuda" or torch.get_num_threads() > 1):
        args.clock = "wall"
    return env, args.clock, device, kept
