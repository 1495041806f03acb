"""Official InstanceAssemble weight files → one validated, typed bundle.

The official release is a folder with ``pytorch_lora_weights.safetensors`` (diffusers/peft LoRA on the
transformer, keys ``transformer.<module>.lora_A.weight`` etc.) and ``layout.pth`` (``layout_net.*`` and
``<block>.layout_forward.*``); docs/reference-semantics.md §4, §7, §8. ``save_combined`` packs both into one
``.safetensors`` file, which ``load_weights`` accepts as well.

The official loaders use ``strict=False`` and would silently ignore a mis-named key (§7, §13.13), so here
every key must be consumed and every shape must agree with the width D read from ``layout_net``.
``layout.pth`` is only ever unpickled with ``weights_only=True``.
"""
import os
import pickle
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from .families import FAMILIES, SINGLE_BLOCKS, Family, resolve
from .geometry import FOURIER_DIM

LORA_FILE_NAME = "pytorch_lora_weights.safetensors"
LAYOUT_FILE_NAME = "layout.pth"
COMBINED_FORMAT = "instanceassemble.weights"
COMBINED_VERSION = "1"
LORA_PREFIX = "transformer."

_OFFICIAL_FIX = (
    f"Fix: download {LORA_FILE_NAME} and {LAYOUT_FILE_NAME} unmodified from the official InstanceAssemble release "
    "(FireRedTeam/InstanceAssemble) into one folder and load that folder, or build a combined file from that "
    "folder with `python -m instanceassemble_core.convert FOLDER OUT.safetensors`.")
_EXPECTED_KEYS = (
    "Expected: LoRA keys 'transformer.<diffusers module>.lora_A.weight' [r, in] and '.lora_B.weight' [out, r] "
    "(optionally '.lora_B.bias' [out] and '.alpha'), on modules of the Flux or SD3 transformer; layout keys "
    "'layout_net.{text_embedder,linears}.{linear_1,linear_2}.{weight,bias}' and "
    "'<block>.layout_forward.{weight,bias}' for every layout block (Flux: transformer_blocks.0,3,6,... and "
    "single_transformer_blocks.0; SD3: every transformer_blocks.N).")

_LAYOUT_NET_NAMES = tuple(f"{mlp}.{layer}.{param}" for mlp in ("text_embedder", "linears")
                          for layer in ("linear_1", "linear_2") for param in ("weight", "bias"))
_LAYOUT_FORWARD_KEY = re.compile(
    r"(?P<block>(?P<kind>transformer_blocks|single_transformer_blocks)\.(?P<index>\d+))"
    r"\.layout_forward\.(?P<param>weight|bias)")
_LORA_KEY = re.compile(r"transformer\.(?P<module>.+)\.(?P<part>lora_A\.weight|lora_B\.weight|lora_B\.bias|alpha)")
_BLOCK_MODULE = re.compile(r"(?P<kind>transformer_blocks|single_transformer_blocks)\.(?P<index>\d+)\.(?P<sub>.+)")


class WeightsError(ValueError):
    """The weight files are missing, corrupt, unsafe, or not an unmodified InstanceAssemble release."""


@dataclass(frozen=True, eq=False)
class LoraDelta:
    """One peft LoRA: ``delta(x) = (x @ down.T @ up.T + up_bias) * scale``.

    down: lora_A [r, in]; up: lora_B [out, r]; up_bias: lora_B.bias [out] or None.
    scale: alpha/r (Flux files with alpha keys; a module without its own alpha uses the most common alpha),
    otherwise 1.0 (always for SD3, whose official loader passes no alphas), §8.
    """
    down: Tensor
    up: Tensor
    scale: float
    up_bias: Tensor | None = None


@dataclass(frozen=True, eq=False)
class InstanceAssembleWeights:
    """Validated InstanceAssemble weights of one family.

    layout_net: keys without the 'layout_net.' prefix, e.g. 'text_embedder.linear_1.weight' [D, P],
        'linears.linear_1.weight' [D/2, D+1152].
    layout_forward: block path ('transformer_blocks.3', 'single_transformer_blocks.0') -> (weight [D, D], bias [D]).
    lora: diffusers module path without 'transformer.' (e.g. 'transformer_blocks.3.attn.to_q') -> delta, only for
        modules the official code ever switches on in a layout block. Deltas are in diffusers row order: for SD3's
        last block 'norm1_context.linear' (AdaLayerNormContinuous) the rows are (scale, shift); ``InstanceBranch``
        swaps the two halves into the (shift, scale) order of MMDiT and of the core (§13.7).
    ignored_lora_modules: LoRA modules present in the file that are never active (other blocks, ff.net.0.proj, ...).
    source: the folder or combined file the weights came from.
    """
    family: str
    hidden_dim: int
    pooled_dim: int
    layout_net: dict[str, Tensor]
    layout_forward: dict[str, tuple[Tensor, Tensor]]
    lora: dict[str, LoraDelta]
    ignored_lora_modules: tuple[str, ...]
    source: str

    @property
    def double_layout_blocks(self) -> tuple[int, ...]:
        """Indices N of the 'transformer_blocks.N' that have a layout branch."""
        return _block_indices(self.layout_forward, "transformer_blocks")

    @property
    def single_layout_blocks(self) -> tuple[int, ...]:
        """Indices N of the 'single_transformer_blocks.N' that have a layout branch (Flux only)."""
        return _block_indices(self.layout_forward, "single_transformer_blocks")


def load_weights(path: str | os.PathLike) -> InstanceAssembleWeights:
    """Load an official release folder (LoRA safetensors + layout.pth) or a combined ``.safetensors`` file."""
    path = Path(path)
    if path.is_dir():
        lora_sd, layout_sd = read_official_pair(path)
        return _assemble(lora_sd, layout_sd, str(path))
    if not path.exists():
        raise WeightsError(
            f"{path} does not exist. Pass the folder that holds {LORA_FILE_NAME} and {LAYOUT_FILE_NAME} from the "
            "official InstanceAssemble release, or a combined .safetensors file made by "
            "`python -m instanceassemble_core.convert`.")
    if path.suffix != ".safetensors":
        raise WeightsError(
            f"{path} is neither a folder nor a combined .safetensors file. "
            f"Pass the folder that holds {LORA_FILE_NAME} and {LAYOUT_FILE_NAME}, not one of the files.")
    tensors, metadata = _read_safetensors(path)
    if metadata.get("format") != COMBINED_FORMAT:
        raise WeightsError(
            f"{path} is not a combined InstanceAssemble file (its metadata has format={metadata.get('format')!r}, "
            f"expected {COMBINED_FORMAT!r}). If it is the official {LORA_FILE_NAME}, pass the folder that holds it "
            f"and {LAYOUT_FILE_NAME}; otherwise create a combined file with "
            "`python -m instanceassemble_core.convert FOLDER OUT.safetensors`.")
    if metadata.get("version") != COMBINED_VERSION:
        raise WeightsError(
            f"{path} is a combined InstanceAssemble file of version {metadata.get('version')!r}; this version of "
            f"the pack reads version {COMBINED_VERSION!r}. Re-create it from the official folder with "
            "`python -m instanceassemble_core.convert FOLDER OUT.safetensors`.")
    lora_sd = {key: value for key, value in tensors.items() if key.startswith(LORA_PREFIX)}
    layout_sd = {key: value for key, value in tensors.items() if not key.startswith(LORA_PREFIX)}
    weights = _assemble(lora_sd, layout_sd, str(path))
    if metadata.get("family") != weights.family:
        raise WeightsError(
            f"{path}: its metadata says family {metadata.get('family')!r} but its keys are those of "
            f"{weights.family!r} weights; the file was edited or damaged. Re-create it from the official folder "
            "with `python -m instanceassemble_core.convert FOLDER OUT.safetensors`.")
    return weights


def save_combined(lora_state_dict: dict, layout_state_dict: dict, path: str | os.PathLike) -> None:
    """Validate the official state dicts and write them, keys unchanged, into one ``.safetensors`` file."""
    path = Path(path)
    weights = _assemble(lora_state_dict, layout_state_dict, str(path))
    tensors = {key: value.contiguous() for key, value in {**lora_state_dict, **layout_state_dict}.items()}
    metadata = {"format": COMBINED_FORMAT, "version": COMBINED_VERSION, "family": weights.family}
    partial = path.with_name(path.name + ".partial")  # never leave a truncated file under the final name
    save_file(tensors, str(partial), metadata=metadata)
    os.replace(partial, path)


def read_official_pair(folder: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Read ``(lora_state_dict, layout_state_dict)`` from an official release folder, unvalidated but safely."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WeightsError(f"{folder} is not a folder; expected the folder holding {LORA_FILE_NAME} and "
                           f"{LAYOUT_FILE_NAME} from the official InstanceAssemble release.")
    for name in (LORA_FILE_NAME, LAYOUT_FILE_NAME):
        if not (folder / name).is_file():
            raise WeightsError(
                f"Missing {folder / name}. The official release folder holds {LORA_FILE_NAME} and "
                f"{LAYOUT_FILE_NAME}: download both from the official InstanceAssemble release "
                "(FireRedTeam/InstanceAssemble) into this folder, or pass a combined .safetensors file instead.")
    lora_sd, _ = _read_safetensors(folder / LORA_FILE_NAME)
    return lora_sd, _read_layout_pth(folder / LAYOUT_FILE_NAME)


def _read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as file:
            metadata = file.metadata() or {}
            tensors = {key: file.get_tensor(key) for key in file.keys()}
    except (SafetensorError, OSError) as error:
        raise WeightsError(
            f"Cannot read {path}: {error}. The file is truncated or corrupt (an interrupted download?): "
            "re-download it from the official InstanceAssemble release (FireRedTeam/InstanceAssemble), or "
            "re-create a combined file with `python -m instanceassemble_core.convert`.") from error
    return tensors, metadata


def _read_layout_pth(path: Path) -> dict[str, Tensor]:
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        forbidden = re.search(r"GLOBAL (\S+)", str(error))  # "Unsupported global: GLOBAL x" or "unsupported GLOBAL x"
        if forbidden:
            raise WeightsError(
                f"Refused to load {path}: it contains a Python object ({forbidden.group(1)}) that is not a tensor, "
                "and unpickling it could run code. The official layout.pth holds tensors only: use the file from "
                "the official InstanceAssemble release (FireRedTeam/InstanceAssemble), or a combined .safetensors "
                "file made from it with `python -m instanceassemble_core.convert`.") from error
        raise _corrupt_layout_error(path) from error
    except Exception as error:  # a cut file fails in many ways: RuntimeError, EOFError, IndexError, struct.error...
        raise _corrupt_layout_error(path) from error
    if not isinstance(loaded, dict):
        raise WeightsError(
            f"{path} holds a {type(loaded).__name__}, expected a flat dict of name -> tensor (the state dict the "
            f"official code passes to load_state_dict). {_OFFICIAL_FIX}")
    not_tensors = sorted(str(key) for key, value in loaded.items()
                         if not isinstance(key, str) or not isinstance(value, Tensor))
    if not_tensors:
        raise WeightsError(
            f"{path} must be a flat dict of name -> tensor (the state dict the official code passes to "
            f"load_state_dict); these entries are not tensors: {_format_keys(not_tensors)}. {_OFFICIAL_FIX}")
    return loaded


def _corrupt_layout_error(path: Path) -> WeightsError:
    return WeightsError(
        f"Cannot read {path}: it is truncated, corrupt or not a PyTorch tensor file (an interrupted download?). "
        "Re-download layout.pth from the official InstanceAssemble release (FireRedTeam/InstanceAssemble).")


class _Problems:
    """Collects every problem of a weight set, so that one error lists all of them."""

    def __init__(self):
        self._items: dict[str, list[str]] = {}

    def add(self, what: str, entries: Iterable[str]) -> None:
        entries = list(entries)
        if entries:
            self._items[what] = sorted(self._items.get(what, []) + entries, key=_natural_key)

    def raise_if_any(self, source: str) -> None:
        if self._items:
            lines = "\n".join(f"  - {what} ({len(entries)}): {_format_keys(entries)}"
                              for what, entries in self._items.items())
            raise WeightsError(
                f"{source} is not a valid InstanceAssemble weight set:\n{lines}\n{_EXPECTED_KEYS}\n{_OFFICIAL_FIX}")


def _assemble(lora_sd: dict, layout_sd: dict, source: str) -> InstanceAssembleWeights:
    problems = _Problems()
    problems.add("tensors that are not floating point",
                 [key for key, value in {**lora_sd, **layout_sd}.items() if not value.is_floating_point()])
    problems.add("missing layout_net keys", [f"layout_net.{name}" for name in _LAYOUT_NET_NAMES
                                             if f"layout_net.{name}" not in layout_sd])
    width_key = "layout_net.text_embedder.linear_1.weight"
    if width_key in layout_sd and layout_sd[width_key].ndim != 2:
        problems.add("wrong shapes", [f"{width_key}: got {list(layout_sd[width_key].shape)}, expected [D, P]"])
    if width_key not in layout_sd or layout_sd[width_key].ndim != 2:
        problems.raise_if_any(source)
    hidden_dim, pooled_dim = layout_sd[width_key].shape

    layout_net = {name: layout_sd[f"layout_net.{name}"] for name in _LAYOUT_NET_NAMES
                  if f"layout_net.{name}" in layout_sd}
    expected_shapes = {f"layout_net.{name}": shape
                       for name, shape in _layout_net_shapes(hidden_dim, pooled_dim).items()}
    layout_forward_keys = {key: match for key in layout_sd if (match := _LAYOUT_FORWARD_KEY.fullmatch(key))}
    problems.add("unrecognised layout keys",
                 [key for key in layout_sd if key not in expected_shapes and key not in layout_forward_keys])

    family = _family_of_layout_blocks({m["block"] for m in layout_forward_keys.values()})
    blocks = _expected_layout_blocks(family, {m["block"] for m in layout_forward_keys.values()})
    problems.add("layout_forward on blocks that have no layout branch",
                 [key for key, match in layout_forward_keys.items() if match["block"] not in blocks])
    problems.add("missing layout_forward keys", [f"{block}.layout_forward.{param}" for block in blocks
                                                 for param in ("weight", "bias")
                                                 if f"{block}.layout_forward.{param}" not in layout_sd])
    for block in blocks:
        expected_shapes[f"{block}.layout_forward.weight"] = (hidden_dim, hidden_dim)
        expected_shapes[f"{block}.layout_forward.bias"] = (hidden_dim,)
    problems.add("wrong shapes", [f"{key}: got {list(layout_sd[key].shape)}, expected {list(shape)}"
                                  for key, shape in expected_shapes.items()
                                  if key in layout_sd and tuple(layout_sd[key].shape) != shape])

    last_joint_index = max(_block_indices(blocks, "transformer_blocks"), default=-1)
    modules = _parse_lora(lora_sd, family, hidden_dim, pooled_dim, last_joint_index, problems)
    problems.raise_if_any(source)

    scales = _lora_scales(family, modules)
    lora, ignored = {}, []
    for path, parts in modules.items():
        if _is_active(path, family, blocks, last_joint_index):
            lora[path] = LoraDelta(down=parts["lora_A.weight"], up=parts["lora_B.weight"], scale=scales[path],
                                   up_bias=parts.get("lora_B.bias"))
        else:
            ignored.append(path)
    layout_forward = {block: (layout_sd[f"{block}.layout_forward.weight"], layout_sd[f"{block}.layout_forward.bias"])
                      for block in sorted(blocks, key=_natural_key)}
    return InstanceAssembleWeights(
        family=family.name, hidden_dim=hidden_dim, pooled_dim=pooled_dim, layout_net=layout_net,
        layout_forward=layout_forward, lora=dict(sorted(lora.items(), key=lambda item: _natural_key(item[0]))),
        ignored_lora_modules=tuple(sorted(ignored, key=_natural_key)), source=source)


def _layout_net_shapes(hidden_dim: int, pooled_dim: int) -> dict[str, tuple[int, ...]]:
    d, half = hidden_dim, hidden_dim // 2
    return {
        "text_embedder.linear_1.weight": (d, pooled_dim), "text_embedder.linear_1.bias": (d,),
        "text_embedder.linear_2.weight": (d, d), "text_embedder.linear_2.bias": (d,),
        "linears.linear_1.weight": (half, d + FOURIER_DIM), "linears.linear_1.bias": (half,),
        "linears.linear_2.weight": (d, half), "linears.linear_2.bias": (d,),
    }


def _family_of_layout_blocks(found: set[str]) -> Family:
    """The family whose layout blocks look like ``found``: with single layout blocks (Flux) or without (SD3)."""
    has_single = any(block.startswith(f"{SINGLE_BLOCKS}.") for block in found)
    return next(family for family in FAMILIES.values() if bool(family.single_layout_blocks) == has_single)


def _expected_layout_blocks(family: Family, found: set[str]) -> set[str]:
    """The family's layout blocks up to the last joint layout block found (Flux: 0, 3, ... and single block 0;
    SD3: 0..last)."""
    step = family.joint_layout_step
    last = max((i for i in _block_indices(found, "transformer_blocks") if i % step == 0), default=0)
    return set(family.layout_blocks(last + 1, max(family.single_layout_blocks, default=-1) + 1))


def _parse_lora(lora_sd: dict, family: Family, hidden_dim: int, pooled_dim: int, last_joint_index: int,
                problems: _Problems) -> dict[str, dict[str, Tensor]]:
    """Group LoRA keys by module and check names, pairing and shapes. Returns module path -> {part: tensor}."""
    modules: dict[str, dict[str, Tensor]] = defaultdict(dict)
    unrecognised, unknown_module = [], []
    for key, value in lora_sd.items():
        match = _LORA_KEY.fullmatch(key)
        if match is None:
            unrecognised.append(key)
        elif _module_dims(match["module"], family, hidden_dim, pooled_dim, last_joint_index) is None:
            unknown_module.append(key)
        else:
            modules[match["module"]][match["part"]] = value
    problems.add("unrecognised LoRA keys (want 'transformer.<module>.lora_A.weight', '.lora_B.weight', "
                 "'.lora_B.bias' or '.alpha')", unrecognised)
    problems.add(f"LoRA on modules the {family.name} transformer does not have", unknown_module)

    unpaired, bad_shapes = [], []
    for path, parts in modules.items():
        if "lora_A.weight" not in parts or "lora_B.weight" not in parts:
            unpaired.extend(f"transformer.{path}.{part}" for part in parts)
            continue
        bad_shapes.extend(_lora_shape_problems(
            path, parts, *_module_dims(path, family, hidden_dim, pooled_dim, last_joint_index)))
    problems.add("LoRA modules without both lora_A.weight and lora_B.weight", unpaired)
    problems.add("wrong shapes", bad_shapes)
    return {path: parts for path, parts in modules.items() if "lora_A.weight" in parts and "lora_B.weight" in parts}


def _lora_shape_problems(path: str, parts: dict[str, Tensor], out_dim: int | None, in_dim: int | None) -> list[str]:
    """Shape mismatches of one module's LoRA; r is lora_A's first dim, None dims are not implied by D and P."""
    down, up = parts["lora_A.weight"], parts["lora_B.weight"]
    rank = down.shape[0] if down.ndim == 2 else None
    bias_dim = out_dim if out_dim is not None else (up.shape[0] if up.ndim == 2 else None)
    out_shown, in_shown = out_dim or "out", in_dim or "in"
    expected = {"lora_A.weight": ((rank, in_dim), f"[r, {in_shown}]"),
                "lora_B.weight": ((out_dim, rank), f"[{out_shown}, r]"),
                "lora_B.bias": ((bias_dim,), f"[{bias_dim or 'out'}]")}
    problems = []
    for part, (shape, shown) in expected.items():
        actual = tuple(parts[part].shape) if part in parts else shape
        if len(actual) != len(shape) or any(want is not None and got != want for got, want in zip(actual, shape)):
            problems.append(f"transformer.{path}.{part}: got {list(actual)}, expected {shown}")
    if "alpha" in parts and parts["alpha"].numel() != 1:
        problems.append(f"transformer.{path}.alpha: got {list(parts['alpha'].shape)}, expected a scalar")
    return problems


def _module_dims(path: str, family: Family, hidden_dim: int, pooled_dim: int,
                 last_joint_index: int) -> tuple[int | None, int | None] | None:
    """(out, in) of a Linear of the family's diffusers transformer (None where not implied by D and P), or None
    when the transformer has no such Linear."""
    match = _BLOCK_MODULE.fullmatch(path)
    if match is None:
        widths = family.top_level_modules.get(path)
    else:
        layout = family.block_layout(f"{match['kind']}.{match['index']}", last_joint_index)
        widths = None if layout is None else layout.modules.get(match["sub"])
    return None if widths is None else tuple(resolve(width, hidden_dim, pooled_dim) for width in widths)


def _lora_scales(family: Family, modules: dict[str, dict[str, Tensor]]) -> dict[str, float]:
    """peft scaling per module as diffusers 0.33.1 sets it up (§8).

    Flux passes the file's alphas: scale = alpha / r, where a module without its own alpha gets the most common
    alpha (ties: the first in file order). The official SD3 loader passes no alphas, so SD3 is always 1.0.
    """
    alphas = {path: float(parts["alpha"]) for path, parts in modules.items() if "alpha" in parts}
    if not family.lora_alphas or not alphas:
        return dict.fromkeys(modules, 1.0)
    common_alpha = Counter(alphas.values()).most_common(1)[0][0]
    return {path: alphas.get(path, common_alpha) / parts["lora_A.weight"].shape[0] for path, parts in modules.items()}


def _is_active(path: str, family: Family, layout_blocks: set[str], last_joint_index: int) -> bool:
    match = _BLOCK_MODULE.fullmatch(path)
    if match is None or f"{match['kind']}.{match['index']}" not in layout_blocks:
        return False
    return match["sub"] in family.block_layout(f"{match['kind']}.{match['index']}", last_joint_index).active


def _block_indices(blocks: Iterable[str], kind: str) -> tuple[int, ...]:
    return tuple(sorted(int(block.rsplit(".", 1)[1]) for block in blocks if block.rsplit(".", 1)[0] == kind))


def _natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _format_keys(keys: list[str], limit: int = 20) -> str:
    shown = ", ".join(keys[:limit])
    return shown if len(keys) <= limit else f"{shown}, ... and {len(keys) - limit} more"
