"""Test-only custom nodes for the e2e server: tiny random-weight models with no downloads.

ComfyUI detects a tiny SD3 from its file (UNETLoader) but not a tiny Flux or tiny CLIP, so those come from stand-in
loader nodes (TinyUNETLoader, TinyCLIPLoader). The tiny SD3, the tiny VAE, a style LoRA and InstanceAssemble weights
in the official layout are real files written into the server's models folder at start-up.
"""
import sys
from pathlib import Path

import folder_paths
from safetensors.torch import save_file

PACK_ROOT = Path(__file__).resolve().parents[4]
if str(PACK_ROOT) not in sys.path:
    sys.path.append(str(PACK_ROOT))  # after ComfyUI: its nodes.py must stay ahead of the pack's nodes/ folder

from tools.tiny_models import TINY_NODES, install_tiny_models, tiny_sd3_state_dict  # noqa: E402

TINY_SD3_FILE = "instanceassemble_tiny_sd3.safetensors"

install_tiny_models(folder_paths.models_dir)
_diffusion_models = Path(folder_paths.models_dir) / "diffusion_models"
_diffusion_models.mkdir(parents=True, exist_ok=True)
save_file(tiny_sd3_state_dict(), str(_diffusion_models / TINY_SD3_FILE))

NODE_CLASS_MAPPINGS = dict(TINY_NODES)
