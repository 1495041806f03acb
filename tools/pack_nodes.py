"""Running the pack's nodes in process, as ComfyUI's executor would call them."""
import torch

LAYOUT_256x128 = {
    "prompt": "a cat and a dog on grass", "width": 256, "height": 128,
    "annos": [
        {"bbox": [0, 0, 128, 128], "category_name": "cat", "caption": "a ginger cat"},
        {"bbox": [64, 32, 250, 100], "category_name": "dog", "caption": ""},
        {"bbox": [0, 0, 256, 128], "category_name": "grass", "caption": "green grass"},
        {"bbox": [200, 8, 214, 20], "category_name": "bird", "caption": "a tiny bird"},
    ],
}


def encode(pack, clip, layout):
    return pack.nodes.encode.InstanceAssembleLayoutEncode().encode(clip, layout)[0]


def apply(pack, model, weights, encoded, layout_scale=1.0, grounding_ratio=0.3):
    return pack.nodes.apply.InstanceAssembleApply().apply(model, weights, encoded, layout_scale, grounding_ratio)[0]


def latent_for(layout, batch=1):
    return torch.zeros(batch, 16, layout.height // 8, layout.width // 8)
