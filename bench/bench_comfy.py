"""ComfyUI set-up shared by ungrounded_overhead.py and end_to_end.py: the tiny random-weight Flux of the test
suite (tests/support/tiny_models.py), synthetic official-format InstanceAssemble weights, a dense layout encoded
and applied through the pack's own nodes, exactly as tests/comfy/test_flux_sampling.py runs them.

``setup()`` must run before anything imports ``comfy``: it puts ComfyUI first on ``sys.path`` (its ``nodes.py``
must win over this pack's ``nodes/``) and selects the CPU unless a CUDA run was asked for.
"""
import sys
import tempfile
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
        import pack_nodes
        return pack_nodes.apply(self.pack, self.stock, self.weights, self.encoded, layout_scale=layout_scale,
                                grounding_ratio=grounding_ratio)


def import_comfy(device: str = "cpu") -> None:
    for path in (str(ROOT), str(ROOT / "tests" / "support")):
        if path not in sys.path:
            sys.path.append(path)
    from tools.comfyui_path import import_comfyui
    import_comfyui(cpu=not device.startswith("cuda"))


def setup(boxes: int = 20, width: int = 512, height: int = 512, seed: int = 0, device: str = "cpu") -> FluxSetup:
    """Tiny Flux (hidden 64, 4 double + 2 single blocks, fp32), its weights, and ``boxes`` dense boxes."""
    import_comfy(device)
    import logging
    logging.disable(logging.WARNING)

    import comfy.utils
    import official_weights
    import pack_nodes
    import sampling
    import tiny_models
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
