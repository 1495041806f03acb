"""Mask regions: RLE storage, exact cell coverage on any grid, and the token sets they give."""
import pytest
import torch

from instanceassemble_core.geometry import box_token_indices, dense_samples
from instanceassemble_core.layout import Instance, Layout, parse_layout
from instanceassemble_core.regions import Region, cell_coverage, instance_token_indices, region_token_indices


def rectangle(height, width, x1, y1, x2, y2):
    mask = torch.zeros(height, width)
    mask[y1:y2, x1:x2] = 1
    return mask


@pytest.mark.parametrize("seed", range(5))
def test_rle_round_trips_any_mask(seed):
    generator = torch.Generator().manual_seed(seed)
    mask = torch.rand(13, 7, generator=generator) > 0.6
    mask[0, 0] = bool(seed % 2)  # runs that start inside and outside
    region = Region.from_mask(mask.float(), 0.3)
    assert torch.equal(region.mask(), mask)
    assert region.counts[0] == (0 if mask[0, 0] else region.counts[0])
    assert sum(region.counts) == 13 * 7


def test_rle_is_coco_column_major():
    mask = torch.tensor([[0, 1], [0, 1], [1, 0]], dtype=torch.float32)  # columns: 0 0 1 | 1 1 0
    assert Region.from_mask(mask).counts == (2, 3, 1)


def test_coverage_is_the_exact_area_share_for_masks_of_any_size():
    mask = rectangle(10, 12, 3, 2, 9, 5).bool()
    coverage = cell_coverage(mask, 5, 6)  # cells of 2x2 mask pixels
    expected = torch.zeros(5, 6, dtype=torch.float64)
    expected[1, 1:5] = torch.tensor([0.5, 1, 1, 0.5])
    expected[2, 1:5] = torch.tensor([0.25, 0.5, 0.5, 0.25])
    assert torch.equal(coverage, expected)
    # a 3x3 mask on a 2x2 grid: the centre pixel covers a quarter of each cell's (1.5 px)² area / (2.25)
    centre = torch.zeros(3, 3, dtype=torch.bool)
    centre[1, 1] = True
    assert torch.allclose(cell_coverage(centre, 2, 2), torch.full((2, 2), 0.25 / 2.25, dtype=torch.float64))


def test_threshold_picks_the_cells_covered_at_least_that_much():
    mask = rectangle(64, 64, 8, 0, 40, 16)  # 4x4 grid of 16-px cells: row 0 covers 0.5, 1, 0.5 of cells 0..2
    region = lambda t: Region.from_mask(mask, t)  # noqa: E731
    assert region_token_indices(region(0.5), 4, 4).tolist() == [0, 1, 2]
    assert region_token_indices(region(0.51), 4, 4).tolist() == [1]
    assert region_token_indices(region(1.0), 4, 4).tolist() == [1]


def aligned_box_layout(width=256, height=128, bbox=(32, 48, 128, 112)):
    return Layout(width, height, "", (Instance(bbox, "cat"),))


@pytest.mark.parametrize("mask_scale", [1, 2, 0.5])
@pytest.mark.parametrize("threshold", [0.01, 0.5, 1.0])
def test_a_grid_aligned_rectangle_mask_has_exactly_the_box_tokens(mask_scale, threshold):
    layout = aligned_box_layout()
    x1, y1, x2, y2 = (int(v * mask_scale) for v in layout.instances[0].bbox)
    mask = rectangle(int(128 * mask_scale), int(256 * mask_scale), x1, y1, x2, y2)
    region = Region.from_mask(mask, threshold)
    assert region.bbox(256, 128) == layout.instances[0].bbox
    box_tokens = box_token_indices(dense_samples(layout), 8, 16)[0]
    for grid in ((8, 16), (16, 32)):  # the layout's own grid and a 2x larger image
        assert torch.equal(region_token_indices(region, *grid),
                           box_token_indices(dense_samples(layout), *grid)[0])
    assert torch.equal(region_token_indices(region, 8, 16), box_tokens)


def test_an_unaligned_rectangle_follows_the_threshold_not_the_box_truncation():
    # x 40..120 on 16-px cells: the box rule keeps col 2 (partly covered first col) and drops col 7 (half covered)
    layout = aligned_box_layout(bbox=(40, 48, 120, 112))
    box_cols = sorted({int(t) % 16 for t in box_token_indices(dense_samples(layout), 8, 16)[0]})
    assert box_cols == [2, 3, 4, 5, 6]
    mask = rectangle(128, 256, 40, 48, 120, 112)
    cols = lambda t: sorted({int(i) % 16 for i in region_token_indices(Region.from_mask(mask, t), 8, 16)})  # noqa
    assert cols(0.5) == [2, 3, 4, 5, 6, 7]  # cols 2 (0.5 covered) and 7 (0.5 covered) reach 0.5
    assert cols(0.6) == [3, 4, 5, 6]


def test_instances_without_a_region_keep_their_box_tokens():
    mask = torch.zeros(128, 256)
    mask[0:16, 0:32] = 1
    mask[112:128, 224:256] = 1  # two blobs: the bbox spans the image, the tokens do not
    region = Region.from_mask(mask)
    layout = Layout(256, 128, "", (Instance((32, 48, 128, 112), "cat"),
                                   Instance(region.bbox(256, 128), "stones", "", region)))
    tokens = instance_token_indices(layout, dense_samples(layout), 8, 16)
    assert torch.equal(tokens[0], box_token_indices(dense_samples(layout), 8, 16)[0])
    assert tokens[1].tolist() == [0, 1, 126, 127]


def test_layout_json_keeps_regions_through_save_reload_and_resize():
    region = Region.from_mask(rectangle(32, 64, 4, 4, 20, 30), 0.25)
    layout = Layout(256, 128, "p", (Instance(region.bbox(256, 128), "cat", "", region),))
    again = parse_layout(layout.to_json())
    assert again == layout and again.instances[0].region == region
    assert parse_layout(layout.to_json(), width=512, height=256).instances[0].region == region


@pytest.mark.parametrize("region, message", [
    ({"size": [4, 4], "counts": [3, 3]}, "add up to height × width = 16"),
    ({"size": [4, 4], "counts": [16], "threshold": 0}, "threshold must be in (0, 1]"),
    ({"size": [4], "counts": [16]}, "size [height, width]"),
    ({"size": [4, 4], "counts": [15.5, 0.5]}, "whole numbers"),
])
def test_bad_regions_name_the_field_and_the_fix(region, message):
    data = {"format": "instanceassemble.layout", "version": 1, "width": 64, "height": 64,
            "boxes": [{"bbox": [0, 0, 32, 32], "category": "a", "region": region}]}
    with pytest.raises(ValueError) as error:
        parse_layout(data)
    assert "boxes[0].region" in str(error.value) and message in str(error.value) and "Fix:" in str(error.value)


def test_a_resized_mask_instance_has_its_masks_bounding_box_at_the_new_size():
    """Proportional scaling of the old bbox can be an ulp off (1000/3 * 700/1000 != 700/3); the mask's bbox is not,
    and it is what the editor computes (web/layout_region.js regionBBox) when the size changes."""
    mask = torch.zeros(3, 3)
    mask[1, 1:] = 1
    region = Region.from_mask(mask)
    source = Layout(1000, 1000, "p", (Instance(region.bbox(1000, 1000), "a", "b", region),
                                      Instance((0, 0, 300, 300), "c", "d")))
    result = source.resized(700, 500)
    assert result.instances[0].bbox == region.bbox(700, 500) == (700 / 3, 500 / 3, 700.0, 1000 / 3)
    assert result.instances[0].region == region
    assert result.instances[1].bbox == (0, 0, 210, 150)
