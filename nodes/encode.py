"""InstanceAssembleLayoutEncode: CLIP + LAYOUT → INSTANCEASSEMBLE_LAYOUT (per-instance pooled text,
docs/reference-semantics.md §5)."""
from dataclasses import dataclass

import torch
from torch import Tensor

from ..instanceassemble_core.families import FAMILIES
from ..instanceassemble_core.geometry import dense_samples
from ..instanceassemble_core.layout import Layout
from .comfy_compat import clip_execution
from .layout_type import LAYOUT_TYPE

CLIP_MAX_TOKENS = 77


@dataclass(frozen=True)
class EncodedLayout:
    """A layout with its instance texts encoded by the graph's CLIP."""
    layout: Layout
    family: str        # "flux" | "sd3": which text encoders produced ``pooled``
    samples: Tensor    # [K, 72] float32 dense box samples (§2)
    pooled: Tensor     # [K, P] float32 pooled text per instance (Flux: CLIP-L 768; SD3: [CLIP-L, CLIP-G] 2048)


def clip_family(clip) -> str:
    """"flux" or "sd3" from the CLIP object's text-encoder stack, or a ValueError naming the node and the fix."""
    model = clip.cond_stage_model
    name = type(model).__name__
    if hasattr(model, "clip_g") and hasattr(model, "clip_l"):
        if model.clip_l is None or model.clip_g is None:
            raise ValueError(
                "InstanceAssembleLayoutEncode: clip: SD3 instance texts need both CLIP-L and CLIP-G "
                "(clip_l.safetensors + clip_g.safetensors); load them with TripleCLIPLoader or DualCLIPLoader "
                "(type sd3).")
        return "sd3"
    if hasattr(model, "clip_l") and hasattr(model, "t5xxl"):
        return "flux"
    raise ValueError(
        f"InstanceAssembleLayoutEncode: clip: this CLIP ({name}) is neither Flux's (CLIP-L + T5) nor SD3's "
        "(CLIP-L + CLIP-G [+ T5]). Connect the CLIP output of the loader for your Flux or SD3 model.")


def _plain_token_ids(sd_tokenizer, texts: list[str]) -> list[list[int]]:
    """CLIP tokenisation without ComfyUI's prompt-weighting syntax: BOS + 75 tokens + EOS, padded to 77."""
    ids = sd_tokenizer.tokenizer(texts, padding="max_length", max_length=CLIP_MAX_TOKENS, truncation=True)["input_ids"]
    return [list(map(int, row)) for row in ids]


def _pooled(clip_model, token_ids: list[list[int]], projected: bool) -> Tensor:
    """Pooled output [N, P] of one CLIP text model for a batch of token-id rows, in one call."""
    clip_model.set_clip_options({"projected_pooled": projected})
    try:
        return clip_model(token_ids)[1].float().cpu()
    finally:
        clip_model.reset_clip_options()


def encode_instance_texts(clip, texts: list[str]) -> tuple[str, Tensor]:
    """(family, pooled [N, P]): Flux = CLIP-L unprojected; SD3 = cat[CLIP-L projected, CLIP-G projected]."""
    family = clip_family(clip)
    if not texts:
        return family, torch.zeros(0, 0)
    unique = sorted(set(texts), key=texts.index)
    model, tokenizer = clip.cond_stage_model, clip.tokenizer
    with torch.no_grad(), clip_execution(clip):
        pooled = torch.cat([
            _pooled(getattr(model, part.encoder), _plain_token_ids(getattr(tokenizer, part.encoder), unique),
                    projected=part.projected)
            for part in FAMILIES[family].pooled_text], dim=-1)
    return family, pooled[[unique.index(text) for text in texts]]


class InstanceAssembleLayoutEncode:
    DESCRIPTION = ("Encodes each box's text (category, caption) with the model's own CLIP, one batched call, "
                   "exactly as the official pipeline does (no prompt-weighting syntax, 77-token truncation).")
    CATEGORY = "InstanceAssemble"
    RETURN_TYPES = ("INSTANCEASSEMBLE_LAYOUT",)
    RETURN_NAMES = ("layout",)
    OUTPUT_TOOLTIPS = ("The layout with per-box text embeddings, for InstanceAssembleApply.",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "clip": ("CLIP", {"tooltip": "The CLIP of the Flux or SD3 model you sample with."}),
            "layout": (LAYOUT_TYPE, {"tooltip": "Boxes with a category and caption each."}),
        }}

    def encode(self, clip, layout: Layout):
        texts = [instance.text for instance in layout.instances]
        family, pooled = encode_instance_texts(clip, texts)
        return (EncodedLayout(layout=layout, family=family, samples=dense_samples(layout), pooled=pooled),)


NODE_CLASS_MAPPINGS = {"InstanceAssembleLayoutEncode": InstanceAssembleLayoutEncode}
NODE_DISPLAY_NAME_MAPPINGS = {"InstanceAssembleLayoutEncode": "InstanceAssemble Layout Encode"}
