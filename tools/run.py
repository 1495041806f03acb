"""Headless runner: a ComfyUI workflow, an API prompt, or a layout JSON, run in process on ComfyUI's own executor.

    python -m tools.run --tiny                                     # smoke run: tiny random-weight models, CPU
    python -m tools.run example_workflows/flux1_dev.json           # a workflow as the ComfyUI frontend saves it
    python -m tools.run my_prompt_api.json                         # Workflow > Export (API)
    python -m tools.run --layout my_layout.json --model flux-dev   # a layout on the matching example workflow

ComfyUI is found by tools/comfyui_path.py. Its built-in nodes and this pack are loaded (``--custom-nodes`` loads
every pack in ComfyUI's custom_nodes/ too), the graph is checked by ComfyUI's own validation and run by
``execution.PromptExecutor``. The images go to ``<out>/<name>.png`` and the layout overlay (the boxes drawn over
the image by InstanceAssembleDrawLayout) to ``<out>/<name>_layout.png``.
"""
import argparse
import asyncio
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tools.comfyui_path import PACK_ROOT, import_comfyui, import_pack

EXAMPLES = PACK_ROOT / "example_workflows"
MODEL_WORKFLOWS = {"flux-dev": "flux1_dev.json", "flux-schnell": "flux1_schnell.json", "sd3": "sd3_medium.json"}
WEIGHTS_URL = "https://huggingface.co/FireRedTeam/InstanceAssemble"

# Loader inputs that name a model file, and the ComfyUI model folder the file belongs in.
MODEL_FILE_INPUTS = {
    "UNETLoader": {"unet_name": "diffusion_models"},
    "CheckpointLoaderSimple": {"ckpt_name": "checkpoints"},
    "VAELoader": {"vae_name": "vae"},
    "CLIPLoader": {"clip_name": "text_encoders"},
    "DualCLIPLoader": {"clip_name1": "text_encoders", "clip_name2": "text_encoders"},
    "TripleCLIPLoader": {"clip_name1": "text_encoders", "clip_name2": "text_encoders", "clip_name3": "text_encoders"},
    "LoraLoader": {"lora_name": "loras"},
    "LoraLoaderModelOnly": {"lora_name": "loras"},
    "InstanceAssembleLoader": {"weights": "instanceassemble"},
}
# Frontend-only node types (no Python class): notes are dropped, the others are resolved through.
NOTE_TYPES = {"Note", "MarkdownNote"}
REROUTE, PRIMITIVE = "Reroute", "PrimitiveNode"
MODE_MUTED, MODE_BYPASSED = 2, 4
# BOUNDING_BOXES: the box canvas widget of ComfyUI 0.29's Create Bounding Boxes (frontend 1.4x+)
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", "BOUNDING_BOXES"}
SEED_INPUTS = ("seed", "noise_seed")
OVERLAY_NODE = "InstanceAssembleDrawLayout"


class RunError(Exception):
    """A problem the user can fix (missing file, bad graph); printed without a traceback."""


# ---- ComfyUI ---------------------------------------------------------------------------------------------------

def load_nodes(custom_nodes: bool = False) -> None:
    """ComfyUI's built-in extra nodes and this pack's nodes (``custom_nodes``: every pack ComfyUI would load).
    ComfyUI must already be importable (:func:`tools.comfyui_path.import_comfyui`)."""
    import nodes

    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=custom_nodes, init_api_nodes=False))
    if "InstanceAssembleApply" not in nodes.NODE_CLASS_MAPPINGS:
        pack = import_pack()
        nodes.NODE_CLASS_MAPPINGS.update(pack.NODE_CLASS_MAPPINGS)
        nodes.NODE_DISPLAY_NAME_MAPPINGS.update(pack.NODE_DISPLAY_NAME_MAPPINGS)


def node_class(class_type: str, where: str):
    import nodes

    cls = nodes.NODE_CLASS_MAPPINGS.get(class_type)
    if cls is None:
        raise RunError(f"{where}: unknown node type '{class_type}'. If it is a node of a newer ComfyUI, update "
                       "ComfyUI; if it comes from another custom node pack, install that pack in ComfyUI/custom_nodes/ "
                       "and run with --custom-nodes.")
    return cls


# ---- UI workflow → API prompt ----------------------------------------------------------------------------------

def _widget_slots(cls) -> list[tuple[str, int, bool]]:
    """(input name, number of saved values, optional?) for each input that has a widget, in the frontend's order.
    Seeds (and inputs with ``control_after_generate``) save a second value, the "control after generate" mode;
    image-upload combos save the upload button's value."""
    slots = []
    input_types = cls.INPUT_TYPES()
    for section in ("required", "optional"):
        for name, spec in input_types.get(section, {}).items():
            kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
            if options.get("forceInput") or not (isinstance(kind, list) or kind in WIDGET_TYPES):
                continue
            control = options.get("control_after_generate") or (kind == "INT" and name in SEED_INPUTS)
            count = 1 + bool(control) + bool(options.get("image_upload"))
            slots.append((name, count, section == "optional"))
    return slots


def _widget_values(node: dict, cls) -> dict:
    values = node.get("widgets_values") or []
    slots = _widget_slots(cls)
    inputs, position = {}, 0
    for name, count, optional in slots:
        if position >= len(values) and optional:
            break  # saved before the node gained this optional widget
        if position < len(values):
            value = values[position]  # list values go wrapped, as the frontend sends them (lists are links)
            inputs[name] = {"__value__": value} if isinstance(value, list) else value
        position += count
    if position != len(values):
        expected = ", ".join(name for name, _, _ in slots)
        raise RunError(f"node #{node['id']} ({node['type']}): its {len(values)} saved widget values do not match the "
                       f"node's widgets ({expected}). The workflow was saved for another version of this node: open "
                       "it in ComfyUI and save it again, or use Workflow > Export (API).")
    return inputs


def workflow_to_prompt(workflow: dict) -> dict:
    """Convert a workflow saved by the ComfyUI frontend into an API prompt, as the frontend's graphToPrompt does:
    notes dropped, reroutes and bypassed nodes linked through, muted nodes and their links removed, values of
    linked PrimitiveNodes already held by the target widgets."""
    if workflow.get("definitions", {}).get("subgraphs"):
        raise RunError("this workflow contains subgraphs; unpack them in ComfyUI (right click > Unpack Subgraph) or "
                       "use Workflow > Export (API) and run the exported file.")
    by_id = {node["id"]: node for node in workflow["nodes"]}
    links = {link_id: (origin, slot, kind) for link_id, origin, slot, _, _, kind in workflow.get("links", [])}

    def source(link_id):
        """(origin id, slot) of a link after reroutes and bypassed nodes; PRIMITIVE, or None when muted/dangling."""
        while link_id is not None and link_id in links:
            origin_id, slot, kind = links[link_id]
            origin = by_id.get(origin_id)
            if origin is None or origin.get("mode") == MODE_MUTED:
                return None
            if origin["type"] == PRIMITIVE:
                return PRIMITIVE
            if origin["type"] == REROUTE or origin.get("mode") == MODE_BYPASSED:
                candidates = origin.get("inputs", [])
                same_slot = candidates[slot:slot + 1] if origin["type"] != REROUTE else candidates[:1]
                matching = [i for i in same_slot if i.get("type") in (kind, "*") or origin["type"] == REROUTE]
                matching = matching or [i for i in candidates if i.get("type") == kind]
                link_id = matching[0].get("link") if matching else None
                continue
            return str(origin_id), slot
        return None

    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in NOTE_TYPES | {REROUTE, PRIMITIVE} or node.get("mode") in (MODE_MUTED, MODE_BYPASSED):
            continue
        cls = node_class(node["type"], f"node #{node['id']}")
        inputs = _widget_values(node, cls)
        for slot in node.get("inputs", []):
            if slot.get("link") is None:
                continue
            origin = source(slot["link"])
            if origin is None:
                inputs.pop(slot["name"], None)
            elif origin is not PRIMITIVE:
                inputs[slot["name"]] = list(origin)
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs,
                                   "_meta": {"title": node.get("title") or node["type"]}}
    return prompt


# ---- graphs ----------------------------------------------------------------------------------------------------

def _read_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise RunError(f"{path}: {error.strerror}.") from None
    except UnicodeDecodeError as error:
        raise RunError(f"{path}: not UTF-8 text (byte {error.start}); save the file as UTF-8 JSON.") from None


def read_json(path: Path):
    try:
        return json.loads(_read_text(path))
    except ValueError as error:
        raise RunError(f"{path}: not valid JSON ({error}).") from None
    except RecursionError:
        raise RunError(f"{path}: the JSON is nested too deeply to be a workflow.") from None


def load_graph(path: Path) -> dict:
    """An API prompt from a UI workflow file or an API-format file."""
    data = read_json(path)
    if isinstance(data, dict) and isinstance(data.get("nodes"), list):
        return workflow_to_prompt(data)
    if isinstance(data, dict) and data and all(isinstance(n, dict) and "class_type" in n for n in data.values()):
        return data
    hint = " It looks like a layout: run it with --layout." if isinstance(data, dict) and (
        "annos" in data or "boxes" in data) else ""
    raise RunError(f"{path}: neither a ComfyUI workflow nor an API prompt.{hint}")


def layout_graph(layout_path: Path, model: str) -> dict:
    """The example workflow of ``model`` with its InstanceAssembleLayoutFromJSON node reading ``layout_path``; the
    image size is the layout's, floored to multiples of 16 (the boxes rescale with it); a layout ``seed`` is used."""
    import nodes
    token_aligned_size = import_pack().instanceassemble_core.geometry.token_aligned_size

    prompt = load_graph(EXAMPLES / MODEL_WORKFLOWS[model])
    text = _read_text(layout_path)
    try:
        layout = nodes.NODE_CLASS_MAPPINGS["InstanceAssembleLayoutFromJSON"]().parse(text)[0]
    except ValueError as error:
        raise RunError(f"{layout_path}: {error}") from None
    for node in prompt.values():
        if node["class_type"] == "InstanceAssembleLayoutFromJSON":
            node["inputs"].update(json=text, width=token_aligned_size(layout.width),
                                  height=token_aligned_size(layout.height))
    if layout.seed is not None:
        set_seed(prompt, layout.seed)
    return prompt


def set_seed(prompt: dict, seed: int) -> None:
    for node in prompt.values():
        for name in SEED_INPUTS:
            if isinstance(node["inputs"].get(name), int):
                node["inputs"][name] = seed


def _ancestors(prompt: dict, node_id: str) -> set[str]:
    seen, todo = set(), [node_id]
    while todo:
        for value in prompt[todo.pop()]["inputs"].values():
            # a link is [node id, slot]; other lists are values (ComfyUI unwraps {"__value__": [...]} in place)
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and value[0] not in seen \
                    and value[0] in prompt:
                seen.add(value[0])
                todo.append(value[0])
    return seen


def ensure_overlay(prompt: dict) -> None:
    """Add InstanceAssembleDrawLayout → PreviewImage when the graph has a layout and saved images but draws no
    boxes: the boxes go over the images of the first SaveImage / PreviewImage."""
    if any(node["class_type"] == OVERLAY_NODE for node in prompt.values()):
        return
    layout_type = node_class(OVERLAY_NODE, "overlay").INPUT_TYPES()["required"]["layout"][0]
    returns = {node_id: node_class(node["class_type"], f"node #{node_id}").RETURN_TYPES
               for node_id, node in prompt.items()}
    layouts = [[node_id, list(types).index(layout_type)] for node_id, types in returns.items() if layout_type in types]
    images = [node["inputs"].get("images") for node in prompt.values()
              if node["class_type"] in ("SaveImage", "PreviewImage")]
    if layouts and images and isinstance(images[0], list):
        prompt["instanceassemble_overlay"] = {"class_type": OVERLAY_NODE,
                                              "inputs": {"image": images[0], "layout": layouts[0]}}
        prompt["instanceassemble_overlay_preview"] = {"class_type": "PreviewImage",
                                                      "inputs": {"images": ["instanceassemble_overlay", 0]}}


def check_model_files(prompt: dict) -> None:
    """Raise a RunError naming every model file the graph's loaders cannot find, and the folder it goes in."""
    import folder_paths

    missing = []
    for node_id, node in prompt.items():
        for name, folder in MODEL_FILE_INPUTS.get(node["class_type"], {}).items():
            value = node["inputs"].get(name)
            choices = node_class(node["class_type"], f"node #{node_id}").INPUT_TYPES()["required"][name][0]
            if not isinstance(value, str) or value in choices:
                continue
            paths = folder_paths.get_folder_paths(folder)  # e.g. models/unet (legacy) before models/diffusion_models
            target = Path(next((p for p in paths if Path(p).name == folder), paths[0]))
            if folder == "instanceassemble":
                missing.append(f"{value} not found: download the '{value}' folder (pytorch_lora_weights.safetensors"
                               f" + layout.pth) from {WEIGHTS_URL} and put it in {target / value}{os.sep}")
            else:
                missing.append(f"{value} not found: put it in {target}{os.sep}")
    if missing:
        raise RunError("missing model files:\n  " + "\n  ".join(missing))


# ---- execution -------------------------------------------------------------------------------------------------

class ConsoleServer:
    """The part of ComfyUI's PromptServer the executor talks to: prints each node as it starts and the samplers'
    steps as a progress bar."""

    def __init__(self, prompt: dict):
        self.prompt = prompt
        self.client_id = None
        self.last_node_id = None
        self.last_prompt_id = None
        self.sockets_metadata = {}
        self.started = 0
        self.bar = None

    def queue_updated(self):
        pass

    def send_sync(self, event, data, sid=None):
        if event == "executing" and data.get("node") in self.prompt:
            self.close_bar()
            self.started += 1
            node = self.prompt[data["node"]]
            print(f"[{self.started}/{len(self.prompt)}] {node.get('_meta', {}).get('title', node['class_type'])}",
                  flush=True)

    def progress(self, value, total, preview=None, prompt_id=None, node_id=None):
        from tqdm import tqdm

        if self.bar is None or self.bar.total != total:
            self.close_bar()
            self.bar = tqdm(total=total, unit="step", leave=False, file=sys.stdout)
        self.bar.update(value - self.bar.n)

    def close_bar(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _error_text(messages: list) -> str:
    for event, data in messages:
        if event == "execution_error":
            return f"{data['node_type']} (node #{data['node_id']}): {data['exception_message'].strip()}"
    return "the run stopped (interrupted)."


def _validation_text(error: dict, node_errors: dict, prompt: dict) -> str:
    lines = [f"{prompt[node_id]['class_type']} (node #{node_id}): {item['message']}: {item['details']}"
             for node_id, info in node_errors.items() for item in info.get("errors", [])]
    return "ComfyUI refused the graph:\n  " + "\n  ".join(lines or [f"{error['message']} {error['details']}".strip()])


def prompt_executor(server):
    """``execution.PromptExecutor`` with the classic node cache, built as each ComfyUI's main.py builds it for
    ``--cache-classic``: 0.3.x takes ``cache_size``; 2026 versions take ``cache_args`` and read its RAM headroom
    figures (``"ram"``, ``"ram_inactive"``, in GiB; 0 = no RAM-pressure eviction) on every run."""
    import inspect

    import execution

    if "cache_args" in inspect.signature(execution.PromptExecutor).parameters:
        return execution.PromptExecutor(server, cache_type=execution.CacheType.CLASSIC,
                                        cache_args={"lru": 0, "ram": 0, "ram_inactive": 0})
    return execution.PromptExecutor(server, cache_type=execution.CacheType.CLASSIC, cache_size=0)


def execute(prompt: dict, out_dir: Path, name: str) -> dict[str, list[Path]]:
    """Validate and run an API prompt; copy its images to ``out_dir`` as ``name*.png`` and ``name_layout*.png``.
    Returns {"image": [...], "layout": [...]}."""
    import comfy.utils
    import execution
    import folder_paths

    check_model_files(prompt)
    prompt_id = str(uuid.uuid4())
    valid, error, outputs, node_errors = asyncio.run(execution.validate_prompt(prompt_id, prompt, None))
    if not valid:
        raise RunError(_validation_text(error, node_errors, prompt))

    server = ConsoleServer(prompt)
    samplers_bar = comfy.utils.PROGRESS_BAR_ENABLED
    comfy.utils.PROGRESS_BAR_ENABLED = False  # one bar, drawn by ConsoleServer
    comfy.utils.set_progress_bar_global_hook(server.progress)
    saved_dirs = folder_paths.get_output_directory(), folder_paths.get_temp_directory()
    with tempfile.TemporaryDirectory(prefix="instanceassemble_run_") as scratch:
        folder_paths.set_output_directory(os.path.join(scratch, "output"))
        folder_paths.set_temp_directory(os.path.join(scratch, "temp"))
        try:
            executor = prompt_executor(server)
            executor.execute(prompt, prompt_id, {"client_id": "tools.run"}, outputs)
        finally:
            server.close_bar()
            comfy.utils.PROGRESS_BAR_ENABLED = samplers_bar
            comfy.utils.set_progress_bar_global_hook(None)
            folder_paths.set_output_directory(saved_dirs[0])
            folder_paths.set_temp_directory(saved_dirs[1])
        if not executor.success:
            raise RunError(_error_text(executor.status_messages))
        return _collect_images(prompt, executor.history_result["outputs"], Path(scratch), Path(out_dir), name)


def _collect_images(prompt, ui_outputs, scratch: Path, out_dir: Path, name: str) -> dict[str, list[Path]]:
    found = {"image": [], "layout": []}
    for node_id, ui in ui_outputs.items():
        kind = "layout" if any(prompt[a]["class_type"] == OVERLAY_NODE for a in _ancestors(prompt, node_id)) \
            else "image"
        for image in ui.get("images", []):
            found[kind].append(scratch / image["type"] / image["subfolder"] / image["filename"])
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for kind, files in found.items():
        stem = name if kind == "image" else f"{name}_layout"
        written[kind] = []
        for index, file in enumerate(sorted(files)):
            target = out_dir / f"{stem if len(files) == 1 else f'{stem}_{index + 1}'}{file.suffix}"
            shutil.copyfile(file, target)
            written[kind].append(target)
    return written


# ---- command line ----------------------------------------------------------------------------------------------

def _parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tools.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("graph", nargs="?", type=Path, help="a workflow (.json saved by ComfyUI) or an API prompt")
    parser.add_argument("--layout", type=Path, help="a layout JSON (official demo format, COCO, DenseLayout or the "
                                                    "editor's) to run on the example workflow of --model")
    parser.add_argument("--model", choices=sorted(MODEL_WORKFLOWS), default="flux-dev",
                        help="base model of --layout, and of --tiny without a workflow (default flux-dev)")
    parser.add_argument("--tiny", action="store_true",
                        help="run on tiny random-weight models (no downloads, CPU, small image): a smoke test")
    parser.add_argument("--out", type=Path, help="output folder (default: ComfyUI's output/instanceassemble/)")
    parser.add_argument("--input-directory", type=Path,
                        help="LoadImage's folder, as ComfyUI's own option (default: ComfyUI's input/); loading the "
                             "pack copies the example workflows' input images there")
    parser.add_argument("--seed", type=int, help="seed for every sampler of the graph")
    parser.add_argument("--cpu", action="store_true",
                        help="run on the CPU even when a GPU is available (without a GPU it always does)")
    parser.add_argument("--custom-nodes", action="store_true",
                        help="also load every custom node pack in ComfyUI/custom_nodes/")
    parser.add_argument("-v", "--verbose", action="store_true", help="show ComfyUI's log and error tracebacks")
    args = parser.parse_args(argv)
    if args.graph and args.layout:
        parser.error("give either a workflow / API prompt or --layout, not both")
    if not (args.graph or args.layout or args.tiny):
        parser.error("give a workflow or API prompt, or --layout FILE (or --tiny for a smoke run)")
    return args


def _build_prompt(args) -> tuple[dict, str]:
    if args.layout:
        return layout_graph(args.layout, args.model), f"{args.layout.stem}_{args.model}"
    graph = args.graph or EXAMPLES / MODEL_WORKFLOWS[args.model]
    return load_graph(graph), graph.stem


def _accelerator_available() -> bool:
    import torch

    xpu = getattr(torch, "xpu", None)
    return torch.cuda.is_available() or torch.backends.mps.is_available() or bool(xpu and xpu.is_available())


def run(args) -> dict[str, list[Path]]:
    cpu = args.cpu or args.tiny or not _accelerator_available()
    if cpu and not (args.cpu or args.tiny):
        print("no GPU found: running on the CPU", file=sys.stderr)
    import_comfyui(cpu=cpu)
    import folder_paths

    if args.input_directory:  # before the pack loads: it copies the example inputs there
        if not args.input_directory.is_dir():
            raise RunError(f"--input-directory {args.input_directory}: no such folder.")
        folder_paths.set_input_directory(str(args.input_directory.resolve()))
    if not args.verbose:  # optional comfy_extras that fail to import (e.g. without torchaudio) log tracebacks
        logging.disable(logging.WARNING)
    load_nodes(custom_nodes=args.custom_nodes)
    logging.disable(logging.NOTSET)
    prompt, name = _build_prompt(args)
    if args.seed is not None:
        set_seed(prompt, args.seed)
    ensure_overlay(prompt)
    out_dir = args.out or Path(folder_paths.get_output_directory()) / "instanceassemble"
    if not args.tiny:
        return execute(prompt, out_dir, name)

    import torch
    from tools.tiny_models import install_tiny_models, tiny_prompt

    torch.set_num_threads(1)  # tiny matrices gain nothing from threads, and busy cores make idle threads spin
    with tempfile.TemporaryDirectory(prefix="instanceassemble_tiny_models_") as models_dir:
        install_tiny_models(models_dir)
        return execute(tiny_prompt(prompt), out_dir, f"{name}_tiny")


def main(argv=None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    start = time.perf_counter()
    try:
        written = run(args)
    except RunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        if args.verbose:
            raise
        print(f"error: {type(error).__name__}: {error} (run with -v for the traceback)", file=sys.stderr)
        return 1
    for kind, label in (("image", "image"), ("layout", "layout overlay")):
        for path in written[kind]:
            print(f"{label}: {path}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
