"""Whole generations on a real ComfyUI server with tiny random-weight models: a layout drawn with the mouse in the
browser drives a tiny Flux, and a tiny SD3 loaded by ComfyUI's own UNETLoader runs with CFG through the HTTP API."""
import json
import time

import pytest

from editor_page import EditorPage

TINY_SD3_FILE = "instanceassemble_tiny_sd3.safetensors"
FLUX_WEIGHTS, SD3_WEIGHTS = "instanceassemble_tiny_flux", "instanceassemble_tiny_sd3"
TINY_VAE = "instanceassemble_tiny_vae.safetensors"

# Nodes added around the drawn editor node: a tiny Flux generation following the layout, and its overlay.
FLUX_GRAPH = """(editorId) => {
    const add = (type, pos, values = {}) => {
        const n = LiteGraph.createNode(type); n.pos = pos; app.graph.add(n);
        for (const [name, value] of Object.entries(values)) n.widgets.find((w) => w.name === name).value = value;
        return n;
    };
    const editor = app.graph.getNodeById(editorId);
    const unet = add('TinyUNETLoader', [960, 0], {unet_name: 'flux1-dev.safetensors'});
    const clip = add('TinyCLIPLoader', [960, 100], {type: 'flux'});
    const weights = add('InstanceAssembleLoader', [960, 200], {weights: '%s'});
    const encode = add('InstanceAssembleLayoutEncode', [1200, 100]);
    const apply = add('InstanceAssembleApply', [1440, 0], {grounding_ratio: 0.5});
    const text = add('CLIPTextEncode', [1200, 300]);
    const guidance = add('FluxGuidance', [1440, 300]);
    const latent = add('EmptySD3LatentImage', [1200, 500], {width: 256, height: 128});
    const sampler = add('KSampler', [1680, 0], {steps: 4, cfg: 1.0, sampler_name: 'euler', scheduler: 'simple'});
    const vae = add('VAELoader', [1440, 500], {vae_name: '%s'});
    const decode = add('VAEDecode', [1920, 0]);
    const save = add('SaveImage', [2160, 0]);
    const draw = add('InstanceAssembleDrawLayout', [2160, 300]);
    const preview = add('PreviewImage', [2400, 300]);
    text.convertWidgetToInput?.(text.widgets.find((w) => w.name === 'text'));
    clip.connect(0, encode, 0); editor.connect(0, encode, 1);
    unet.connect(0, apply, 0); weights.connect(0, apply, 1); encode.connect(0, apply, 2);
    clip.connect(0, text, 0); editor.connect(1, text, 'text');
    text.connect(0, guidance, 0);
    apply.connect(0, sampler, 0); guidance.connect(0, sampler, 1); guidance.connect(0, sampler, 2);
    latent.connect(0, sampler, 3);
    sampler.connect(0, decode, 0); vae.connect(0, decode, 1);
    decode.connect(0, save, 0);
    decode.connect(0, draw, 0); editor.connect(0, draw, 1); draw.connect(0, preview, 0);
}""" % (FLUX_WEIGHTS, TINY_VAE)


@pytest.mark.renderers("classic")  # a generation per frontend; the renderers share the editor code tested elsewhere
def test_boxes_drawn_in_the_browser_drive_a_tiny_flux_generation(page, comfy_server):
    ed = EditorPage(page).start()
    node_id = ed.add_editor()
    page.js("""(id) => { const n = app.graph.getNodeById(id);
        for (const [name, value] of [['width', 256], ['height', 128]]) {
            const w = n.widgets.find((w) => w.name === name); w.value = value; w.callback?.(value);
        } }""", node_id)
    ed.wait_ready()
    ed.draw_layout([((16, 16, 120, 110), "cat", "a ginger cat"), ((140, 20, 240, 100), "dog", "a brown dog")],
                   "a cat and a dog")
    layout = ed.value()
    assert (layout["width"], layout["height"], len(layout["boxes"])) == (256, 128, 2)

    page.js(FLUX_GRAPH, node_id)
    page.js("() => app.queuePrompt(0, 1)")
    entry = _wait_for_prompt_with(comfy_server, lambda prompt: any(
        n["class_type"] == "InstanceAssembleLayoutEditor" and json.loads(n["inputs"]["layout"]) == layout
        for n in prompt.values()))
    assert entry["status"]["status_str"] == "success", entry["status"]
    prompt = entry["prompt"][2]
    save_id = next(k for k, n in prompt.items() if n["class_type"] == "SaveImage")
    (image,) = entry["outputs"][save_id]["images"]
    assert (comfy_server.base_dir / "output" / image["subfolder"] / image["filename"]).is_file()
    apply_id = next(k for k, n in prompt.items() if n["class_type"] == "InstanceAssembleApply")
    assert prompt[apply_id]["inputs"]["grounding_ratio"] == 0.5
    text_id = next(k for k, n in prompt.items() if n["class_type"] == "CLIPTextEncode")
    assert prompt[text_id]["inputs"]["text"] == [str(node_id), 1]  # the editor's global prompt
    preview_id = next(k for k, n in prompt.items() if n["class_type"] == "PreviewImage")
    assert len(entry["outputs"][preview_id]["images"]) == 1


def _wait_for_prompt_with(server, matches, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for prompt_id, entry in server.request("/history")[1].items():
            if matches(entry["prompt"][2]):
                return server.wait_history(prompt_id, timeout)
        time.sleep(0.3)
    raise AssertionError(f"the queued prompt is not in the history:\n{server.log_tail()}")


def test_tiny_sd3_through_unetloader_with_cfg_and_a_negative_prompt(comfy_server):
    layout = {"format": "instanceassemble.layout", "version": 1, "width": 256, "height": 128, "prompt": "a cat",
              "boxes": [{"bbox": [16, 16, 128, 112], "category": "cat", "caption": "a ginger cat"}]}
    prompt = {
        "unet": {"class_type": "UNETLoader", "inputs": {"unet_name": TINY_SD3_FILE, "weight_dtype": "default"}},
        "clip": {"class_type": "TinyCLIPLoader", "inputs": {"type": "sd3"}},
        "weights": {"class_type": "InstanceAssembleLoader", "inputs": {"weights": SD3_WEIGHTS}},
        "layout": {"class_type": "InstanceAssembleLayoutEditor",
                   "inputs": {"width": 256, "height": 128, "layout": json.dumps(layout)}},
        "encode": {"class_type": "InstanceAssembleLayoutEncode", "inputs": {"clip": ["clip", 0], "layout": ["layout", 0]}},
        "apply": {"class_type": "InstanceAssembleApply",
                  "inputs": {"model": ["unet", 0], "instanceassemble": ["weights", 0], "layout": ["encode", 0],
                             "layout_scale": 1.0, "grounding_ratio": 0.3}},
        "positive": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["clip", 0], "text": ["layout", 1]}},
        "negative": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["clip", 0], "text": "blurry"}},
        "latent": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 256, "height": 128, "batch_size": 2}},
        "sample": {"class_type": "KSampler",
                   "inputs": {"model": ["apply", 0], "positive": ["positive", 0], "negative": ["negative", 0],
                              "latent_image": ["latent", 0], "seed": 3, "steps": 4, "cfg": 7.0,
                              "sampler_name": "euler", "scheduler": "simple", "denoise": 1.0}},
        "save": {"class_type": "SaveLatent", "inputs": {"samples": ["sample", 0], "filename_prefix": "ia_sd3"}},
    }
    entry = comfy_server.run(prompt)
    (latent,) = entry["outputs"]["save"]["latents"]
    assert (comfy_server.base_dir / "output" / latent["subfolder"] / latent["filename"]).is_file()
