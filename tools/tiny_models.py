"""Tiny random-weight models for runs without downloads: the runner's ``--tiny`` smoke run and the tests.

Builders: Flux (dev / schnell) and SD3 diffusion models built through ComfyUI's own classes, CLIP/T5 text encoders
with the real tokenizers, a TAESD-architecture VAE, a Flux style LoRA, and InstanceAssemble weights in the official
file layout. Weights are initialised like a trained network (LeCun-normal weights with std 1/sqrt(fan_in), biases
around 0.1, norm scales around 1): with a small-std init, port bugs change outputs by less than test tolerances.
State dicts use the BFL (Flux) and MMDiT (SD3) key names that ComfyUI loads; ``comfy`` is imported lazily.

Graphs: :func:`install_tiny_models` writes the tiny files into a models folder registered with ComfyUI and adds
stand-in loader nodes; :func:`tiny_prompt` rewrites an API prompt to use them. Only the loaders ComfyUI cannot feed
from a tiny file are swapped (its model detection knows only full-size Flux and CLIP); VAELoader, LoraLoaderModelOnly
and InstanceAssembleLoader load real tiny files through their own code. The diffusion models go through ComfyUI's
own loading path (model detection, the model config's state-dict processing), so ComfyUI's renamings between
versions are absorbed there; the patchers register ``cached_patcher_init`` as ComfyUI's loaders do.
"""
import copy
from pathlib import Path

import torch

from . import official_weights

FLUX_TINY = dict(image_model="flux", in_channels=16, out_channels=16, vec_in_dim=64, context_in_dim=48,
                 hidden_size=64, mlp_ratio=4.0, num_heads=2, depth=4, depth_single_blocks=2,
                 axes_dim=[8, 12, 12], theta=10000, patch_size=2, qkv_bias=True, guidance_embed=True)
_FLUX_SIZE_ASSUMED_BY_DETECTION = ("hidden_size", "num_heads", "axes_dim", "context_in_dim")
SD3_TINY_DEPTH = 2  # hidden 128, pooled text 128 (CLIP-L 64 + CLIP-G 64)

TINY_TEXT_ENCODERS = {
    "clip_l_model_config": {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 2,
                            "num_hidden_layers": 3, "projection_dim": 64},
    "clip_g_model_config": {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 2,
                            "num_hidden_layers": 3, "projection_dim": 64},
    "t5xxl_model_config": {"d_model": 48, "d_ff": 96, "d_kv": 24, "num_heads": 2, "num_layers": 2},
}

# Names of the tiny files a tiny prompt refers to.
TINY_VAE = "instanceassemble_tiny_vae.safetensors"
TINY_STYLE_LORA = "instanceassemble_tiny_flux_style_lora.safetensors"
TINY_WEIGHTS = {"flux": "instanceassemble_tiny_flux", "sd3": "instanceassemble_tiny_sd3"}


def _weight(g, *shape):
    """LeCun-normal tensor: std 1/sqrt(fan_in), fan_in = product of all dims but the first."""
    fan_in = 1
    for size in shape[1:]:
        fan_in *= size
    return torch.randn(*shape, generator=g) / fan_in ** 0.5


def _bias(g, n):
    return 0.1 + 0.05 * torch.randn(n, generator=g)


def _scale(g, n):
    return 1.0 + 0.1 * torch.randn(n, generator=g)


def _linear(sd, g, name, fan_in, fan_out, bias=True):
    sd[name + ".weight"] = _weight(g, fan_out, fan_in)
    if bias:
        sd[name + ".bias"] = _bias(g, fan_out)


def tiny_flux_state_dict(cfg=FLUX_TINY, seed=1):
    """BFL/ComfyUI-named Flux weights for ``cfg`` (hidden H, mlp M = H·mlp_ratio, head_dim = H/heads)."""
    g = torch.Generator().manual_seed(seed)
    hidden = cfg["hidden_size"]
    mlp = int(hidden * cfg["mlp_ratio"])
    head_dim = hidden // cfg["num_heads"]
    patch_dim = cfg["in_channels"] * cfg["patch_size"] ** 2
    sd = {}
    _linear(sd, g, "img_in", patch_dim, hidden)
    _linear(sd, g, "time_in.in_layer", 256, hidden)
    _linear(sd, g, "time_in.out_layer", hidden, hidden)
    _linear(sd, g, "vector_in.in_layer", cfg["vec_in_dim"], hidden)
    _linear(sd, g, "vector_in.out_layer", hidden, hidden)
    if cfg["guidance_embed"]:
        _linear(sd, g, "guidance_in.in_layer", 256, hidden)
        _linear(sd, g, "guidance_in.out_layer", hidden, hidden)
    _linear(sd, g, "txt_in", cfg["context_in_dim"], hidden)
    for i in range(cfg["depth"]):
        for stream in ("img", "txt"):
            p = f"double_blocks.{i}.{stream}_"
            _linear(sd, g, p + "mod.lin", hidden, 6 * hidden)
            _linear(sd, g, p + "attn.qkv", hidden, 3 * hidden, bias=cfg["qkv_bias"])
            sd[p + "attn.norm.query_norm.scale"] = _scale(g, head_dim)
            sd[p + "attn.norm.key_norm.scale"] = _scale(g, head_dim)
            _linear(sd, g, p + "attn.proj", hidden, hidden)
            _linear(sd, g, p + "mlp.0", hidden, mlp)
            _linear(sd, g, p + "mlp.2", mlp, hidden)
    for i in range(cfg["depth_single_blocks"]):
        p = f"single_blocks.{i}."
        _linear(sd, g, p + "linear1", hidden, 3 * hidden + mlp)
        _linear(sd, g, p + "linear2", hidden + mlp, hidden)
        sd[p + "norm.query_norm.scale"] = _scale(g, head_dim)
        sd[p + "norm.key_norm.scale"] = _scale(g, head_dim)
        _linear(sd, g, p + "modulation.lin", hidden, 3 * hidden)
    _linear(sd, g, "final_layer.linear", hidden, patch_dim)
    _linear(sd, g, "final_layer.adaLN_modulation.1", hidden, 2 * hidden)
    return sd


def tiny_sd3_state_dict(depth=SD3_TINY_DEPTH, ctx=4096, adm=128, pos_embed_max=None, qk_norm=False, seed=2):
    """MMDiT-named SD3 weights: hidden H = 64·depth, heads = depth (head_dim 64); the last context block is
    pre-only. ``pos_embed_max`` adds a learned ``pos_embed`` [1, max², H] (absent: MMDiT's computed sin-cos)."""
    g = torch.Generator().manual_seed(seed)
    hidden = 64 * depth
    sd = {"x_embedder.proj.weight": _weight(g, hidden, 16, 2, 2), "x_embedder.proj.bias": _bias(g, hidden)}
    _linear(sd, g, "t_embedder.mlp.0", 256, hidden)
    _linear(sd, g, "t_embedder.mlp.2", hidden, hidden)
    _linear(sd, g, "y_embedder.mlp.0", adm, hidden)
    _linear(sd, g, "y_embedder.mlp.2", hidden, hidden)
    _linear(sd, g, "context_embedder", ctx, hidden)
    if pos_embed_max:
        sd["pos_embed"] = torch.randn(1, pos_embed_max ** 2, hidden, generator=g) * 0.5
    for i in range(depth):
        for block in ("context_block", "x_block"):
            p = f"joint_blocks.{i}.{block}."
            pre_only = i == depth - 1 and block == "context_block"
            _linear(sd, g, p + "adaLN_modulation.1", hidden, (2 if pre_only else 6) * hidden)
            _linear(sd, g, p + "attn.qkv", hidden, 3 * hidden)
            if qk_norm:
                sd[p + "attn.ln_q.weight"] = _scale(g, 64)
                sd[p + "attn.ln_k.weight"] = _scale(g, 64)
            if not pre_only:
                _linear(sd, g, p + "attn.proj", hidden, hidden)
                _linear(sd, g, p + "mlp.fc1", hidden, 4 * hidden)
                _linear(sd, g, p + "mlp.fc2", 4 * hidden, hidden)
    _linear(sd, g, "final_layer.adaLN_modulation.1", hidden, 2 * hidden)
    _linear(sd, g, "final_layer.linear", hidden, 4 * 16)
    return sd


def tiny_flux_patcher(cfg=FLUX_TINY, state_dict=None, dtype=torch.float32, manual_cast_dtype=None):
    """ComfyUI Flux (dev, or schnell when ``guidance_embed`` is False) from a BFL-named state dict, through
    ComfyUI's own loading path: ``model_detection`` reads the config from the keys, the detected model config's
    ``process_unet_state_dict`` converts the released names (``.scale`` → ``.weight`` in 2026 ComfyUI). Detection
    knows only Flux.1's full size (0.3.64 fixes hidden 3072, 24 heads, text 4096), so those come from ``cfg``.
    ``dtype`` is the weights' storage, ``manual_cast_dtype`` the compute dtype ComfyUI casts them to (None: none)."""
    import comfy.model_detection
    import comfy.model_management as mm
    import comfy.model_patcher

    sd = tiny_flux_state_dict(cfg) if state_dict is None else state_dict
    unet_config = comfy.model_detection.detect_unet_config(sd, "")
    unet_config.update({key: copy.deepcopy(cfg[key]) for key in _FLUX_SIZE_ASSUMED_BY_DETECTION})
    model_config = comfy.model_detection.model_config_from_unet_config(unet_config, sd)
    if model_config is None:
        raise RuntimeError(f"ComfyUI did not recognise the tiny Flux state dict (detected {unet_config})")
    model_config.set_inference_dtype(dtype, manual_cast_dtype)
    model = model_config.get_model({})
    model.diffusion_model.load_state_dict(model_config.process_unet_state_dict(dict(sd)), strict=True)
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                               offload_device=mm.unet_offload_device())
    # As ComfyUI's loaders do (2026): how to build a fresh copy, e.g. for another device.
    patcher.cached_patcher_init = (tiny_flux_patcher, (cfg, sd, dtype, manual_cast_dtype))
    return patcher


def tiny_sd3_patcher(state_dict=None, **kw):
    """fp32 ComfyUI SD3 auto-detected by ``comfy.sd.load_diffusion_model_state_dict``; ``kw`` goes to
    :func:`tiny_sd3_state_dict` when no state dict is given."""
    import comfy.sd

    sd = tiny_sd3_state_dict(**kw) if state_dict is None else state_dict
    patcher = comfy.sd.load_diffusion_model_state_dict(dict(sd), model_options={"dtype": torch.float32})
    if patcher is None:
        raise RuntimeError("ComfyUI did not detect the tiny SD3 state dict")
    patcher.cached_patcher_init = (tiny_sd3_patcher, (sd,))
    return patcher


def _init_like_trained(module, seed):
    """Trained-like init of every parameter: matrices and conv kernels LeCun-normal, 1-D biases ~N(0.1, 0.05),
    other 1-D (norm scales) ~N(1, 0.1), scalars 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim >= 2:
                value = _weight(g, *p.shape)
            elif p.ndim == 1:
                value = _bias(g, p.shape[0]) if name.endswith("bias") else _scale(g, p.shape[0])
            else:
                value = torch.ones(())
            p.copy_(value.to(p.dtype))


def tiny_clip(kind: str, seed=3):
    """Real CLIP/T5 tokenizers with tiny fp32 encoders. ``"flux"``: clip_l + tiny T5, cond [1, ≥256, 48],
    pooled = clip_l unprojected [1, 64]. ``"sd3"``: clip_l + clip_g without T5, cond [1, 77, 4096], pooled [1, 128]."""
    import comfy.sd
    import comfy.supported_models_base as smb
    import comfy.text_encoders.flux as te_flux
    import comfy.text_encoders.sd3_clip as te_sd3

    if kind == "flux":
        target = smb.ClipTarget(te_flux.FluxTokenizer, te_flux.flux_clip(dtype_t5=torch.float32))
    elif kind == "sd3":
        target = smb.ClipTarget(te_sd3.SD3Tokenizer, te_sd3.sd3_clip(clip_l=True, clip_g=True, t5=False))
    else:
        raise ValueError(f"unknown text encoder kind {kind!r} (expected 'flux' or 'sd3')")
    clip = comfy.sd.CLIP(target=target, model_options=dict(TINY_TEXT_ENCODERS, dtype=torch.float32))
    _init_like_trained(clip.cond_stage_model, seed)
    return clip


def tiny_vae_state_dict(seed=4):
    """A 16-channel TAESD (the architecture of TAEF1 / TAESD3, ~2.4M parameters) with random weights. ComfyUI's
    VAELoader detects it from its keys, so a tiny file runs VAEDecode through ComfyUI's own VAE code."""
    import comfy.taesd.taesd

    vae = comfy.taesd.taesd.TAESD(latent_channels=16)
    _init_like_trained(vae, seed)
    with torch.no_grad():
        vae.vae_scale.fill_(1.0)
        vae.vae_shift.fill_(0.0)
    return {name: value.contiguous() for name, value in vae.state_dict().items()}


def tiny_flux_style_lora_state_dict(cfg=FLUX_TINY, rank=4, seed=5):
    """A ComfyUI-format LoRA on every double block's image qkv and every single block's linear1 of the tiny Flux."""
    g = torch.Generator().manual_seed(seed)
    hidden, mlp = cfg["hidden_size"], int(cfg["hidden_size"] * cfg["mlp_ratio"])
    targets = {f"double_blocks.{i}.img_attn.qkv": 3 * hidden for i in range(cfg["depth"])}
    targets.update({f"single_blocks.{i}.linear1": 3 * hidden + mlp for i in range(cfg["depth_single_blocks"])})
    lora = {}
    for target, out_dim in targets.items():
        lora[f"diffusion_model.{target}.lora_down.weight"] = torch.randn(rank, hidden, generator=g) * 0.3
        lora[f"diffusion_model.{target}.lora_up.weight"] = torch.randn(out_dim, rank, generator=g) * 0.3
    return lora


def write_tiny_weights(folder, family: str):
    """InstanceAssemble weights for the tiny Flux / SD3, written as the official folder pair."""
    if family == "flux":
        lora_sd, layout_sd = official_weights.make_official_weights(
            "flux", FLUX_TINY["hidden_size"], TINY_TEXT_ENCODERS["clip_l_model_config"]["hidden_size"],
            FLUX_TINY["depth"], FLUX_TINY["depth_single_blocks"], seed=11)
    else:
        pooled = sum(TINY_TEXT_ENCODERS[f"clip_{c}_model_config"]["projection_dim"] for c in ("l", "g"))
        lora_sd, layout_sd = official_weights.make_official_weights("sd3", 64 * SD3_TINY_DEPTH, pooled, SD3_TINY_DEPTH,
                                                            seed=12)
    return official_weights.write_official_folder(folder, lora_sd, layout_sd)


# ---- stand-in loader nodes -------------------------------------------------------------------------------------

def _family_of(file_name: str) -> str:
    name = file_name.lower()
    if "sd3" in name:
        return "sd3"
    if "flux" in name:
        return "flux"
    raise ValueError(f"tiny models: cannot tell whether '{file_name}' is a Flux or an SD3 file; "
                     "the tiny run supports Flux.1 and SD3 graphs only.")


class TinyUNETLoader:
    """Stand-in for UNETLoader: a tiny random-weight Flux.1 dev, or schnell when the file name says so."""
    CATEGORY = "InstanceAssemble/testing"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"unet_name": ("STRING", {})}}

    def load(self, unet_name):
        if _family_of(unet_name) == "sd3":
            return (tiny_sd3_patcher(depth=SD3_TINY_DEPTH),)
        return (tiny_flux_patcher(dict(FLUX_TINY, guidance_embed="schnell" not in unet_name.lower())),)


class TinyCLIPLoader:
    """Stand-in for DualCLIPLoader / TripleCLIPLoader / CLIPLoader: tiny CLIP-L + T5 for type "flux", else tiny
    CLIP-L + CLIP-G (SD3)."""
    CATEGORY = "InstanceAssemble/testing"
    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"type": ("STRING", {})}}

    def load(self, type):
        return (tiny_clip("flux" if type == "flux" else "sd3"),)


class TinyCheckpointLoader:
    """Stand-in for CheckpointLoaderSimple with an SD3 checkpoint: tiny SD3 model, tiny CLIP-L/G, tiny VAE."""
    CATEGORY = "InstanceAssemble/testing"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": ("STRING", {})}}

    def load(self, ckpt_name):
        import comfy.sd

        if _family_of(ckpt_name) != "sd3":
            raise ValueError(f"tiny models: '{ckpt_name}': only SD3 checkpoints have a tiny stand-in.")
        return (tiny_sd3_patcher(depth=SD3_TINY_DEPTH), tiny_clip("sd3"), comfy.sd.VAE(sd=tiny_vae_state_dict()))


TINY_NODES = {"TinyUNETLoader": TinyUNETLoader, "TinyCLIPLoader": TinyCLIPLoader,
              "TinyCheckpointLoader": TinyCheckpointLoader}
# class_type → (stand-in, inputs it sets)
_STAND_INS = {
    "UNETLoader": ("TinyUNETLoader", {}),
    "DualCLIPLoader": ("TinyCLIPLoader", {}),
    "TripleCLIPLoader": ("TinyCLIPLoader", {"type": "sd3"}),
    "CLIPLoader": ("TinyCLIPLoader", {}),
    "CheckpointLoaderSimple": ("TinyCheckpointLoader", {}),
}


def install_tiny_models(models_dir) -> None:
    """Write the tiny files under ``models_dir`` (vae/, loras/, instanceassemble/), register those folders with
    ComfyUI's folder_paths and the stand-in loaders with its NODE_CLASS_MAPPINGS."""
    import folder_paths
    import nodes
    from safetensors.torch import save_file

    models_dir = Path(models_dir)
    for kind in ("vae", "loras", "instanceassemble"):
        (models_dir / kind).mkdir(parents=True, exist_ok=True)
    save_file(tiny_vae_state_dict(), str(models_dir / "vae" / TINY_VAE))
    save_file(tiny_flux_style_lora_state_dict(), str(models_dir / "loras" / TINY_STYLE_LORA))
    for family, name in TINY_WEIGHTS.items():
        write_tiny_weights(models_dir / "instanceassemble" / name, family)
    for kind in ("vae", "loras", "instanceassemble"):
        folder_paths.add_model_folder_path(kind, str(models_dir / kind))
    nodes.NODE_CLASS_MAPPINGS.update(TINY_NODES)


def _family_of_prompt(prompt: dict) -> str:
    """"flux" or "sd3": the family of the graph's InstanceAssemble weights (else of its model files)."""
    names = [str(node["inputs"].get(key, "")) for node in prompt.values()
             for key in ("weights", "unet_name", "ckpt_name")]
    families = {_family_of(name) for name in names if "flux" in name.lower() or "sd3" in name.lower()}
    if len(families) != 1:
        raise ValueError("tiny models: the graph must use Flux.1 or SD3 files (with 'flux' or 'sd3' in their names).")
    return families.pop()


def _fit(value: int, scale: float) -> int:
    return max(16, round(value * scale / 16) * 16)


def tiny_prompt(prompt: dict, max_side: int = 256, max_steps: int = 8) -> dict:
    """A copy of an API prompt that runs on the tiny models (see :func:`install_tiny_models`): stand-in loaders,
    tiny file names, every literal ``width``/``height`` pair scaled so the longer side is at most ``max_side``
    (multiples of 16, so layouts, latents and model sampling stay consistent), and at most ``max_steps`` sampler
    steps (enough for grounded and ungrounded steps at the usual grounding ratios)."""
    family = _family_of_prompt(prompt)
    tiny = copy.deepcopy(prompt)
    for node in tiny.values():
        inputs = node["inputs"]
        if node["class_type"] in _STAND_INS:
            node["class_type"], forced = _STAND_INS[node["class_type"]]
            inputs.update(forced)
        if "vae_name" in inputs:
            inputs["vae_name"] = TINY_VAE
        if "lora_name" in inputs:
            inputs["lora_name"] = TINY_STYLE_LORA
        if node["class_type"] == "InstanceAssembleLoader":
            inputs["weights"] = TINY_WEIGHTS[family]
        if isinstance(inputs.get("steps"), int):
            inputs["steps"] = min(inputs["steps"], max_steps)
        width, height = inputs.get("width"), inputs.get("height")
        if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
            scale = min(1.0, max_side / max(width, height))
            inputs["width"], inputs["height"] = _fit(width, scale), _fit(height, scale)
    return tiny
