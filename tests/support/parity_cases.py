"""Layouts for the parity tests: 1, 5 and 20 instances on a 256×128 image (token grid 8×16), with overlapping
boxes, a full-image box, a 1-token box and an edge-touching box."""
import torch

WIDTH, HEIGHT = 256, 128
FULL_IMAGE = [0, 0, WIDTH, HEIGHT]
ONE_TOKEN = [16, 16, 32, 32]
EDGE_TOUCHING = [224, 96, 256, 128]


def random_boxes(count, seed):
    g = torch.Generator().manual_seed(seed)
    boxes = []
    for _ in range(count):
        w, h = (torch.rand(2, generator=g) * torch.tensor([0.5, 0.6]) + 0.05) * torch.tensor([WIDTH, HEIGHT])
        x, y = torch.rand(2, generator=g) * (torch.tensor([WIDTH, HEIGHT]) - torch.stack([w, h]))
        boxes.append([round(float(x), 1), round(float(y), 1), round(float(x + w), 1), round(float(y + h), 1)])
    return boxes


CASES = {
    "1 instance": [[40, 20, 150, 100]],
    "5 instances: overlap, full image, 1 token, edge": [[40, 20, 150, 100], [100, 8, 200, 90], FULL_IMAGE, ONE_TOKEN,
                                                         EDGE_TOUCHING],
    "20 instances": random_boxes(17, 3) + [FULL_IMAGE, ONE_TOKEN, EDGE_TOUCHING],
}


def layout_source(boxes):
    """Official demo JSON for ``boxes`` (captions on every other box)."""
    return {"prompt": "p", "width": WIDTH, "height": HEIGHT,
            "annos": [{"bbox": box, "category_name": f"thing {i}", "caption": f"caption {i}" if i % 2 else ""}
                      for i, box in enumerate(boxes)]}


def relative_error(actual, expected):
    return ((actual - expected).abs().max() / expected.abs().max()).item()
