"""Tiny random-weight Flux / SD3 diffusion models and CLIP encoders for the tests (CPU, fp32, no downloads).

Weights are initialised like a trained network (LeCun-normal weights with std 1/sqrt(fan_in), biases around 0.1,
norm scales around 1): with a small-std init, port bugs change outputs by less than test tolerances.
State dicts use the BFL (Flux) and MMDiT (SD3) key names that ComfyUI loads; ``comfy`` is imported lazily.
"""
import torch

FLUX_TINY = dict(image_model="flux", in_channels=16, out_channels=16, vec_in_dim=64, context_in_dim=48,
                 hidden_size=64, mlp_ratio=4.0, num_heads=2, depth=4, depth_single_blocks=2,
                 axes_dim=[8, 12, 12], theta=10000, patch_size=2, qkv_bias=True, guidance_embed=True)

TINY_TEXT_ENCODERS = {
    "clip_l_model_config": {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 2,
                            "num_hidden_layers": 3, "projection_dim": 64},
    "clip_g_model_config": {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 2,
                            "num_hidden_layers": 3, "projection_dim": 64},
    "t5xxl_model_config": {"d_model": 48, "d_ff": 96, "d_kv": 24, "num_heads": 2, "num_layers": 2},
}


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


def tiny_sd3_state_dict(depth=2, ctx=4096, adm=128, pos_embed_max=None, qk_norm=False, seed=2):
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


def tiny_flux_patcher(cfg=FLUX_TINY, state_dict=None, dtype=torch.float32):
    """ComfyUI Flux (dev, or schnell when ``guidance_embed`` is False) built from an explicit unet config:
    ComfyUI's model detection only knows the full-size Flux."""
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.supported_models

    model_class = comfy.supported_models.Flux if cfg["guidance_embed"] else comfy.supported_models.FluxSchnell
    model_config = model_class(dict(cfg))
    model_config.set_inference_dtype(dtype, None)
    model = model_config.get_model({})
    sd = tiny_flux_state_dict(cfg) if state_dict is None else state_dict
    model.diffusion_model.load_state_dict(sd, strict=True)
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                            offload_device=mm.unet_offload_device())


def tiny_sd3_patcher(state_dict=None, **kw):
    """fp32 ComfyUI SD3 auto-detected by ``comfy.sd.load_diffusion_model_state_dict``; ``kw`` goes to
    :func:`tiny_sd3_state_dict` when no state dict is given."""
    import comfy.sd

    sd = tiny_sd3_state_dict(**kw) if state_dict is None else state_dict
    patcher = comfy.sd.load_diffusion_model_state_dict(dict(sd), model_options={"dtype": torch.float32})
    if patcher is None:
        raise RuntimeError("ComfyUI did not detect the tiny SD3 state dict")
    return patcher


def _init_text_encoder(module, seed):
    """Trained-like init of every parameter: matrices LeCun-normal, 1-D biases ~N(0.1, 0.05), other 1-D (norm
    scales) ~N(1, 0.1), scalars 1."""
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
    _init_text_encoder(clip.cond_stage_model, seed)
    return clip
