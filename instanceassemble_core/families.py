"""One declarative description per model family: everything the weights loader, the hosts, the synthetic weights
and the benchmarks need to know about a family, in one place (docs/reference-semantics.md §4, §5, §7, §8, §13.6,
§13.7).

Module names are diffusers' (the official LoRA and ``layout.pth`` keys); host layers are attribute paths on
ComfyUI's blocks (``comfy.ldm.flux.layers.DoubleStreamBlock``, ``SingleStreamBlock``, MMDiT's
``JointBlock``). Widths are in multiples of the transformer width D; ``"P"`` is the pooled text width.

Adding a family (a Flux.1 derivative with its own trained weights, SD3.5) means writing one ``Family`` here and,
for a new transformer class, a host in ``nodes/hosts``.
"""
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Optional, Union

JOINT_BLOCKS = "transformer_blocks"
SINGLE_BLOCKS = "single_transformer_blocks"

Width = Union[int, str, None]  # a multiple of D, "P" (the pooled text width), or None (not implied by D and P)


@dataclass(frozen=True)
class HostSlot:
    """Where one diffusers module's LoRA delta lands on the host: a host layer and its first output row, in D.

    Hosts fuse projections, so several modules share a layer: Flux's ``img_attn.qkv`` takes ``to_q`` at row 0,
    ``to_k`` at D, ``to_v`` at 2D.
    """
    layer: str
    row: int = 0


@dataclass(frozen=True, eq=False)
class BlockLayout:
    """One kind of transformer block.

    modules: every Linear of the diffusers block -> (out, in) in multiples of D; a LoRA on any of them is a valid
        key of the official file.
    active: the modules whose LoRA the official code switches on inside the branch (§8) -> their host slot.
    scale_shift_rows: active modules whose diffusers rows are (scale, shift) while the host's are (shift, scale)
        (AdaLayerNormContinuous, §13.7); their LoRA rows are swapped once when the branch is built.
    """
    modules: Mapping[str, tuple[int, int]]
    active: Mapping[str, HostSlot]
    scale_shift_rows: frozenset[str] = frozenset()

    def __post_init__(self):
        object.__setattr__(self, "modules", MappingProxyType(dict(self.modules)))
        object.__setattr__(self, "active", MappingProxyType(dict(self.active)))

    def slots_of(self, layer: str) -> tuple[tuple[int, str], ...]:
        """(first row in D, module) of every active module whose delta lands on the host layer ``layer``."""
        return tuple(sorted(((slot.row, module) for module, slot in self.active.items() if slot.layer == layer),
                            key=lambda row_module: row_module[0]))

    def host_layers(self) -> tuple[str, ...]:
        """The host layers that carry at least one delta, in the order of ``active``."""
        return tuple(dict.fromkeys(slot.layer for slot in self.active.values()))


@dataclass(frozen=True)
class PooledText:
    """One text encoder of the instance-text recipe (§5): its name on ComfyUI's CLIP objects, projected or not."""
    encoder: str
    projected: bool


@dataclass(frozen=True, eq=False)
class Family:
    """A model family the official weights exist for.

    name: the key in weights bundles, encoded layouts and combined-file metadata ("flux", "sd3").
    display_name: how errors and help pages name it.
    joint: the joint (double-stream) block, ``transformer_blocks.N``.
    last_joint: the last joint block where it differs (SD3: context-pre-only, §9.3), else None. Such a family has
        a layout branch in every joint block, so its last layout block is the model's last block.
    single: the single-stream block, ``single_transformer_blocks.N``, or None when the family has none.
    joint_layout_step: layout blocks are ``transformer_blocks.{0, step, 2·step, …}`` (§7).
    single_layout_blocks: indices of the single blocks that carry the branch (§7).
    lora_alphas: True when the official loader passes the file's alphas (scale alpha / r), False when it passes
        none (scale 1), §8.
    pooled_text: the instance-text recipe, encoders concatenated in this order (§5).
    top_level_modules: the Linears outside the blocks, (out, in) as widths; valid but never active LoRA targets.
    hidden_dim, pooled_dim, num_joint_blocks, num_single_blocks: the released model's sizes (for orientation and
        full-size benchmarks; the loader reads D and P from the files).
    """
    name: str
    display_name: str
    joint: BlockLayout
    single: Optional[BlockLayout]
    last_joint: Optional[BlockLayout]
    joint_layout_step: int
    single_layout_blocks: tuple[int, ...]
    lora_alphas: bool
    pooled_text: tuple[PooledText, ...]
    top_level_modules: Mapping[str, tuple[Width, Width]] = field(repr=False)
    hidden_dim: int
    pooled_dim: int
    num_joint_blocks: int
    num_single_blocks: int

    def __post_init__(self):
        object.__setattr__(self, "top_level_modules", MappingProxyType(dict(self.top_level_modules)))

    def layout_blocks(self, num_joint_blocks: int, num_single_blocks: int = 0) -> tuple[str, ...]:
        """Block paths that carry ``layout_forward`` in a model with that many blocks, joint first."""
        joint = tuple(f"{JOINT_BLOCKS}.{i}" for i in range(0, num_joint_blocks, self.joint_layout_step))
        return joint + tuple(f"{SINGLE_BLOCKS}.{i}" for i in self.single_layout_blocks if i < num_single_blocks)

    def block_layout(self, block: str, last_joint_index: int) -> Optional[BlockLayout]:
        """The layout of block path ``block`` ("transformer_blocks.3"), where ``last_joint_index`` is the last
        joint layout block; None when the family has no such block."""
        kind, index = block.rsplit(".", 1)
        if kind == SINGLE_BLOCKS:
            return self.single
        if kind != JOINT_BLOCKS:
            return None
        if self.last_joint is None or int(index) < last_joint_index:
            return self.joint
        return self.last_joint if int(index) == last_joint_index else None


def resolve(width: Width, hidden_dim: int, pooled_dim: int) -> Optional[int]:
    """A ``Width`` in features."""
    if width is None:
        return None
    return pooled_dim if width == "P" else width * hidden_dim


_JOINT_MODULES = {
    "norm1.linear": (6, 1),
    "norm1_context.linear": (6, 1),
    "attn.to_q": (1, 1), "attn.to_k": (1, 1), "attn.to_v": (1, 1),
    "attn.add_q_proj": (1, 1), "attn.add_k_proj": (1, 1), "attn.add_v_proj": (1, 1),
    "attn.to_out.0": (1, 1), "attn.to_add_out": (1, 1),
    "ff.net.0.proj": (4, 1), "ff.net.2": (1, 4),
    "ff_context.net.0.proj": (4, 1), "ff_context.net.2": (1, 4),
}
# Context-pre-only: no to_add_out, no ff_context, norm1_context is AdaLayerNormContinuous (scale, shift).
_PRE_ONLY_MODULES = {
    **{name: dims for name, dims in _JOINT_MODULES.items()
       if name != "attn.to_add_out" and not name.startswith("ff_context.")},
    "norm1_context.linear": (2, 1),
}
_SINGLE_MODULES = {
    "norm.linear": (3, 1),
    "proj_mlp": (4, 1),
    "attn.to_q": (1, 1), "attn.to_k": (1, 1), "attn.to_v": (1, 1),
    "proj_out": (1, 5),
}
_COMMON_TOP_LEVEL = {
    "context_embedder": (1, None),
    "time_text_embed.timestep_embedder.linear_1": (1, None),
    "time_text_embed.timestep_embedder.linear_2": (1, 1),
    "time_text_embed.text_embedder.linear_1": (1, "P"),
    "time_text_embed.text_embedder.linear_2": (1, 1),
    "norm_out.linear": (2, 1),
    "proj_out": (None, 1),
}


def _joint_slots(img: dict[str, str], ctx: dict[str, str]) -> dict[str, HostSlot]:
    """Active modules of a joint block -> host slots, from the host's image- and context-side layer names."""
    return {
        "norm1.linear": HostSlot(img["modulation"]),
        "norm1_context.linear": HostSlot(ctx["modulation"]),
        "attn.to_q": HostSlot(img["qkv"], 0), "attn.to_k": HostSlot(img["qkv"], 1),
        "attn.to_v": HostSlot(img["qkv"], 2),
        "attn.add_q_proj": HostSlot(ctx["qkv"], 0), "attn.add_k_proj": HostSlot(ctx["qkv"], 1),
        "attn.add_v_proj": HostSlot(ctx["qkv"], 2),
        "attn.to_out.0": HostSlot(img["out"]),
        "attn.to_add_out": HostSlot(ctx["out"]),
        "ff.net.2": HostSlot(img["mlp_out"]),
        "ff_context.net.2": HostSlot(ctx["mlp_out"]),
    }


def _pre_only(slots: dict[str, HostSlot]) -> dict[str, HostSlot]:
    return {name: slot for name, slot in slots.items() if name not in ("attn.to_add_out", "ff_context.net.2")}


_FLUX_JOINT_SLOTS = _joint_slots(
    img={"modulation": "img_mod.lin", "qkv": "img_attn.qkv", "out": "img_attn.proj", "mlp_out": "img_mlp.2"},
    ctx={"modulation": "txt_mod.lin", "qkv": "txt_attn.qkv", "out": "txt_attn.proj", "mlp_out": "txt_mlp.2"})
_SD3_JOINT_SLOTS = _joint_slots(
    img={"modulation": "x_block.adaLN_modulation.1", "qkv": "x_block.attn.qkv", "out": "x_block.attn.proj",
         "mlp_out": "x_block.mlp.fc2"},
    ctx={"modulation": "context_block.adaLN_modulation.1", "qkv": "context_block.attn.qkv",
         "out": "context_block.attn.proj", "mlp_out": "context_block.mlp.fc2"})

FLUX = Family(
    name="flux",
    display_name="Flux.1",
    joint=BlockLayout(_JOINT_MODULES, _FLUX_JOINT_SLOTS),
    single=BlockLayout(_SINGLE_MODULES, {
        "norm.linear": HostSlot("modulation.lin"),
        "proj_mlp": HostSlot("linear1", 3),
        "attn.to_q": HostSlot("linear1", 0), "attn.to_k": HostSlot("linear1", 1), "attn.to_v": HostSlot("linear1", 2),
        "proj_out": HostSlot("linear2"),
    }),
    last_joint=None,
    joint_layout_step=3,
    single_layout_blocks=(0,),
    lora_alphas=True,
    pooled_text=(PooledText("clip_l", projected=False),),
    top_level_modules={
        **_COMMON_TOP_LEVEL,
        "x_embedder": (1, None),
        "time_text_embed.guidance_embedder.linear_1": (1, None),
        "time_text_embed.guidance_embedder.linear_2": (1, 1),
    },
    hidden_dim=3072, pooled_dim=768, num_joint_blocks=19, num_single_blocks=38,
)

SD3 = Family(
    name="sd3",
    display_name="SD3-medium",
    joint=BlockLayout(_JOINT_MODULES, _SD3_JOINT_SLOTS),
    single=None,
    last_joint=BlockLayout(_PRE_ONLY_MODULES, _pre_only(_SD3_JOINT_SLOTS),
                           scale_shift_rows=frozenset({"norm1_context.linear"})),
    joint_layout_step=1,
    single_layout_blocks=(),
    lora_alphas=False,
    pooled_text=(PooledText("clip_l", projected=True), PooledText("clip_g", projected=True)),
    top_level_modules=_COMMON_TOP_LEVEL,
    hidden_dim=1536, pooled_dim=2048, num_joint_blocks=24, num_single_blocks=0,
)

FAMILIES: Mapping[str, Family] = MappingProxyType({family.name: family for family in (FLUX, SD3)})
