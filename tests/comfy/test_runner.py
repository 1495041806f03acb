"""The headless runner (``python -m tools.run``): the tiny smoke run end to end, the missing-model error, layout
files on the example workflows, and the conversion of frontend-only nodes (notes, reroutes, primitives, bypass)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import folder_paths
from tools import run
from tools.comfyui_path import PACK_ROOT, find_comfyui


def run_cli(tmp_path, *args, timeout=180):
    """The runner in a subprocess, with a LoadImage folder of its own (loading the pack copies the example inputs
    there, not into ComfyUI's input/)."""
    env = dict(os.environ, COMFYUI_PATH=str(find_comfyui()))
    (input_dir := tmp_path / "input").mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "tools.run", "--input-directory", str(input_dir), *map(str, args)],
                          cwd=PACK_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def node_classes(pack):
    run.load_nodes()


def test_tiny_run_writes_the_image_and_the_layout_overlay(tmp_path):
    result = run_cli(tmp_path, "--tiny", "--out", tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    image_path, overlay_path = tmp_path / "flux1_dev_tiny.png", tmp_path / "flux1_dev_tiny_layout.png"
    assert f"image: {image_path}" in result.stdout and f"layout overlay: {overlay_path}" in result.stdout
    image = np.asarray(Image.open(image_path).convert("RGB"))
    overlay = np.asarray(Image.open(overlay_path).convert("RGB"))
    assert image.shape == overlay.shape == (176, 256, 3)  # bigchair at 1536x1024, scaled to 256 px
    assert (image != overlay).any(axis=-1).mean() > 0.01


def test_missing_model_files_say_which_file_goes_in_which_folder(tmp_path):
    workflow = json.loads((run.EXAMPLES / "flux1_dev.json").read_text())
    for node in workflow["nodes"]:
        if node["type"] == "UNETLoader":
            node["widgets_values"][0] = "missing-flux1-dev.safetensors"
        if node["type"] == "InstanceAssembleLoader":
            node["widgets_values"][0] = "missing-flux"
    graph = tmp_path / "workflow.json"
    graph.write_text(json.dumps(workflow))

    result = run_cli(tmp_path, graph, "--out", tmp_path)
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    models = os.path.join(str(find_comfyui()), "models")
    assert ("missing-flux1-dev.safetensors not found: put it in "
            f"{os.path.join(models, 'diffusion_models')}{os.sep}") in result.stderr
    assert "missing-flux not found: download the 'missing-flux' folder" in result.stderr
    assert os.path.join(models, "instanceassemble", "missing-flux") in result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.glob("*.png"))


def test_layout_file_runs_on_the_example_of_the_chosen_model(node_classes, tmp_path):
    layout = {"prompt": "a red ball", "width": 1500, "height": 1000, "seed": 7,
              "annos": [{"bbox": [100, 100, 600, 600], "category_name": "ball", "caption": "a red ball"}]}
    path = tmp_path / "ball.json"
    path.write_text(json.dumps(layout))

    prompt = run.layout_graph(path, "sd3")
    by_class = {node["class_type"]: node["inputs"] for node in prompt.values()}
    assert json.loads(by_class["InstanceAssembleLayoutFromJSON"]["json"]) == layout
    assert (by_class["InstanceAssembleLayoutFromJSON"]["width"],
            by_class["InstanceAssembleLayoutFromJSON"]["height"]) == (1488, 992)  # floored like the official H//16 × W//16 grid (93 × 62 tokens)
    assert by_class["KSampler"]["seed"] == 7 and by_class["KSampler"]["steps"] == 50
    assert by_class["CheckpointLoaderSimple"]["ckpt_name"] == "sd3_medium_incl_clips.safetensors"


def test_frontend_only_nodes_convert_like_the_frontend(node_classes):
    """A note (dropped), a reroute and a bypassed LoRA (linked through), a primitive (its value stays on the widget),
    and a muted node (its link dropped)."""
    def node(id_, type_, widgets=(), inputs=(), outputs=(), mode=0):
        return {"id": id_, "type": type_, "mode": mode, "widgets_values": list(widgets),
                "inputs": [dict(name=n, type=t, link=link, **(extra[0] if extra else {}))
                           for n, t, link, *extra in inputs],
                "outputs": [{"name": t, "type": t, "links": links} for t, links in outputs]}

    workflow = {"nodes": [
        node(1, "UNETLoader", ["flux1-dev.safetensors", "default"], outputs=[("MODEL", [1])]),
        node(2, "LoraLoaderModelOnly", ["style.safetensors", 1.0], [("model", "MODEL", 1)], [("MODEL", [2])], mode=4),
        node(3, "Reroute", inputs=[("", "*", 2)], outputs=[("MODEL", [3])]),
        node(4, "PrimitiveNode", [12345, "fixed"], outputs=[("INT", [4])]),
        node(5, "KSampler", [7, "fixed", 20, 1.0, "euler", "simple", 1.0],
             [("model", "MODEL", 3), ("seed", "INT", 4, {"widget": {"name": "seed"}}), ("positive", "CONDITIONING", 5)]),
        node(6, "CLIPTextEncode", ["muted"], [("clip", "CLIP", None)], [("CONDITIONING", [5])], mode=2),
        node(7, "MarkdownNote", ["**read me**"]),
    ], "links": [[1, 1, 0, 2, 0, "MODEL"], [2, 2, 0, 3, 0, "MODEL"], [3, 3, 0, 5, 0, "MODEL"], [4, 4, 0, 5, 1, "INT"],
                 [5, 6, 0, 5, 2, "CONDITIONING"]]}

    prompt = run.workflow_to_prompt(workflow)
    assert set(prompt) == {"1", "5"}
    assert prompt["5"]["inputs"] == {"model": ["1", 0], "seed": 7, "steps": 20, "cfg": 1.0, "sampler_name": "euler",
                                     "scheduler": "simple", "denoise": 1.0}


def test_workflows_it_cannot_convert_are_refused_with_the_way_out(node_classes):
    workflow = {"nodes": [{"id": 1, "type": "VAELoader", "widgets_values": ["ae.safetensors", "extra"]}], "links": []}
    with pytest.raises(run.RunError, match=r"node #1 \(VAELoader\): its 2 saved widget values.*Export \(API\)"):
        run.workflow_to_prompt(workflow)
    with pytest.raises(run.RunError, match=r"subgraphs.*Export \(API\)"):
        run.workflow_to_prompt({**workflow, "definitions": {"subgraphs": [{"id": "a"}]}})
    with pytest.raises(run.RunError, match="unknown node type 'SomePackNode'.*--custom-nodes"):
        run.workflow_to_prompt({"nodes": [{"id": 1, "type": "SomePackNode"}], "links": []})


def test_an_overlay_is_added_where_the_graph_draws_no_boxes(node_classes):
    prompt = run.load_graph(run.EXAMPLES / "sd3_medium.json")
    by_class = {node["class_type"]: node_id for node_id, node in prompt.items()}
    for class_type in ("InstanceAssembleDrawLayout", "PreviewImage"):
        del prompt[by_class[class_type]]

    run.ensure_overlay(prompt)
    assert prompt["instanceassemble_overlay"]["inputs"] == {
        "image": prompt[by_class["SaveImage"]]["inputs"]["images"],
        "layout": [by_class["InstanceAssembleLayoutFromJSON"], 0]}
    assert prompt["instanceassemble_overlay_preview"]["inputs"] == {"images": ["instanceassemble_overlay", 0]}
    drawn = dict(prompt)
    run.ensure_overlay(prompt)
    assert prompt == drawn


def test_graph_and_node_errors_name_the_node(node_classes, tmp_path):
    with pytest.raises(run.RunError, match=r"ComfyUI refused the graph:\n  SaveImage \(node #1\): Required input is missing"):
        run.execute({"1": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}}, tmp_path, "x")
    prompt = {
        "1": {"class_type": "InstanceAssembleLayoutFromJSON", "inputs": {"json": '{"prompt": "x", "width": 64,'}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "3": {"class_type": "InstanceAssembleDrawLayout", "inputs": {"image": ["2", 0], "layout": ["1", 0]}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }
    with pytest.raises(run.RunError, match=r"InstanceAssembleLayoutFromJSON \(node #1\): .*not valid JSON"):
        run.execute(prompt, tmp_path, "x")


def test_missing_files_are_checked_in_the_folders_comfyui_searches(node_classes, tmp_path):
    folder_paths.add_model_folder_path("loras", str(tmp_path))
    (tmp_path / "mine.safetensors").write_bytes(b"")
    prompt = {"1": {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["2", 0], "lora_name": "mine.safetensors",
                                                                    "strength_model": 1.0}}}
    run.check_model_files(prompt)
    prompt["1"]["inputs"]["lora_name"] = "other.safetensors"
    with pytest.raises(run.RunError, match="other.safetensors not found: put it in .*loras"):
        run.check_model_files(prompt)
