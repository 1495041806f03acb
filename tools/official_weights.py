"""Synthetic InstanceAssemble weights with the official file layout and key names (pure torch).

The official release is a folder with ``pytorch_lora_weights.safetensors`` (diffusers/peft LoRA keys
``transformer.<module>.lora_A.weight`` [r, in] / ``lora_B.weight`` [out, r], optional ``alpha`` scalars)
and ``layout.pth`` (``layout_net.*`` and ``<block>.layout_forward.weight/bias``), docs/reference-semantics.md §4, §7,
§8.

Full-size shapes, for orientation: Flux D=3072, pooled P=768, 19 double + 38 single blocks, single-block
``proj_mlp`` out 4D and ``proj_out`` in 5D; SD3-medium D=1536, P=2048, 24 joint blocks (the last one
context-pre-only). Tests use tiny widths (e.g. D=64).

Weights are initialised like a trained network so that parity tests notice port bugs: LeCun-normal
weights (std 1/sqrt(fan_in)), biases ~ N(0.1, 0.05), LoRA B clearly non-zero, ``layout_forward`` non-zero.
"""
from pathlib import Path

import torch
from safetensors.torch import save_file

from instanceassemble_core.families import FAMILIES, FLUX, SD3, BlockLayout, Family
from instanceassemble_core.geometry import FOURIER_DIM
from instanceassemble_core.weights import LAYOUT_FILE_NAME, LORA_FILE_NAME


def active_modules(layout: BlockLayout) -> dict[str, tuple[int, int]]:
    """Active LoRA modules of one kind of layout block: (out, in) in multiples of D."""
    return {name: layout.modules[name] for name in layout.active}


# LoRA target modules of a layout block that the official code ever switches on: (out, in) in multiples of D.
JOINT_ACTIVE_MODULES = active_modules(FLUX.joint)
SD3_LAST_BLOCK_ACTIVE_MODULES = active_modules(SD3.last_joint)  # norm1_context: AdaLayerNormContinuous (scale, shift)
SINGLE_ACTIVE_MODULES = active_modules(FLUX.single)


def _family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, not {name!r}")
    return FAMILIES[name]


def layout_block_names(family: str, num_double_blocks: int) -> tuple[str, ...]:
    """Blocks that carry ``layout_forward``: Flux double blocks i % 3 == 0 plus single block 0; SD3 every block."""
    description = _family(family)
    return description.layout_blocks(num_double_blocks, max(description.single_layout_blocks, default=-1) + 1)


def inactive_lora_modules(family: str, num_double_blocks: int, num_single_blocks: int) -> tuple[str, ...]:
    """The recognised-but-never-active LoRA modules that ``extra_inactive=True`` adds."""
    description = _family(family)
    modules = ["transformer_blocks.0.ff.net.0.proj", "norm_out.linear"]
    if description.joint_layout_step > 1 and num_double_blocks > 1:
        modules.append("transformer_blocks.1.attn.to_q")  # a joint block without a layout branch
    if description.single is not None and num_single_blocks > 1:
        modules.append("single_transformer_blocks.1.attn.to_q")
    return tuple(modules)


def _lecun(generator: torch.Generator, out_dim: int, in_dim: int) -> torch.Tensor:
    return torch.randn(out_dim, in_dim, generator=generator) / in_dim ** 0.5


def _bias(generator: torch.Generator, dim: int) -> torch.Tensor:
    return 0.1 + 0.05 * torch.randn(dim, generator=generator)


def _active_modules(family: Family, hidden_dim: int, num_double_blocks: int) -> dict[str, tuple[int, int]]:
    """Diffusers module path -> (out, in) for every active LoRA module of every layout block."""
    modules = {}
    for block in layout_block_names(family.name, num_double_blocks):
        for name, (out_mult, in_mult) in active_modules(family.block_layout(block, num_double_blocks - 1)).items():
            modules[f"{block}.{name}"] = (out_mult * hidden_dim, in_mult * hidden_dim)
    return modules


def make_official_weights(family: str, hidden_dim: int, pooled_dim: int, num_double_blocks: int,
                          num_single_blocks: int = 0, rank: int = 4, with_alpha: bool = True,
                          extra_inactive: bool = True, seed: int = 0) -> tuple[dict, dict]:
    """Build ``(lora_state_dict, layout_state_dict)`` exactly as the official files would hold them.

    LoRA: ``transformer.<path>.lora_A.weight`` [rank, in], ``.lora_B.weight`` [out, rank] on every active module
    of every layout block (plus ``transformer.<path>.alpha`` = 2*rank as a 0-dim float tensor when ``with_alpha``;
    plus a few never-active modules when ``extra_inactive``).
    Layout: ``layout_net.text_embedder.linear_1`` [D, P], ``.linear_2`` [D, D], ``layout_net.linears.linear_1``
    [D/2, D+1152], ``.linear_2`` [D, D/2] (weights and biases), and ``<block>.layout_forward.weight`` [D, D] /
    ``.bias`` [D] per layout block. Flux needs ``num_single_blocks >= 1``; SD3 has no single blocks.
    """
    description = _family(family)
    if num_single_blocks <= max(description.single_layout_blocks, default=-1):
        raise ValueError(f"{description.display_name} weights need num_single_blocks >= "
                         f"{max(description.single_layout_blocks) + 1} (single block 0 is a layout block)")
    if description.single is None and num_single_blocks:
        raise ValueError(f"{description.display_name} has no single blocks")
    generator = torch.Generator().manual_seed(seed)
    dim = hidden_dim

    layout_sd = {}
    for name, (out_dim, in_dim) in {
        "text_embedder.linear_1": (dim, pooled_dim),
        "text_embedder.linear_2": (dim, dim),
        "linears.linear_1": (dim // 2, dim + FOURIER_DIM),
        "linears.linear_2": (dim, dim // 2),
    }.items():
        layout_sd[f"layout_net.{name}.weight"] = _lecun(generator, out_dim, in_dim)
        layout_sd[f"layout_net.{name}.bias"] = _bias(generator, out_dim)
    for block in layout_block_names(family, num_double_blocks):
        layout_sd[f"{block}.layout_forward.weight"] = _lecun(generator, dim, dim)
        layout_sd[f"{block}.layout_forward.bias"] = _bias(generator, dim)

    modules = _active_modules(description, dim, num_double_blocks)
    if extra_inactive:
        inactive_dims = {"transformer_blocks.0.ff.net.0.proj": (4 * dim, dim), "norm_out.linear": (2 * dim, dim)}
        for path in inactive_lora_modules(family, num_double_blocks, num_single_blocks):
            modules[path] = inactive_dims.get(path, (dim, dim))
    lora_sd = {}
    for path, (out_dim, in_dim) in modules.items():
        lora_sd[f"transformer.{path}.lora_A.weight"] = _lecun(generator, rank, in_dim)
        # B std 0.5/sqrt(r): clearly non-zero, unlike peft's zero init of an untrained adapter
        up = torch.randn(out_dim, rank, generator=generator)
        lora_sd[f"transformer.{path}.lora_B.weight"] = 0.5 / rank ** 0.5 * up
        if with_alpha:
            lora_sd[f"transformer.{path}.alpha"] = torch.tensor(2.0 * rank)
    return lora_sd, layout_sd


def write_official_folder(folder, lora_sd: dict, layout_sd: dict) -> Path:
    """Write the official release layout: ``pytorch_lora_weights.safetensors`` + ``layout.pth`` (``torch.save``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(lora_sd, str(folder / LORA_FILE_NAME), metadata={"format": "pt"})
    torch.save(layout_sd, folder / LAYOUT_FILE_NAME)
    return folder
