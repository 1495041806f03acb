"""Box geometry against hand-computed values and against the port of the official code in tests/support."""
import numpy as np
import pytest
import torch

import reference_layout as ref
from instanceassemble_core import geometry
from instanceassemble_core.layout import Instance, Layout

f32 = np.float32


def one_box(bbox, width=100, height=100) -> Layout:
    return Layout(width, height, "", (Instance(bbox, "thing"),))


def samples_with_corners(*corners) -> torch.Tensor:
    """[K, 72] rows holding only the corners that the token logic reads: row[0:2] and row[70:72]."""
    rows = torch.zeros(len(corners), geometry.SAMPLES_PER_BOX)
    for row, (x1, y1, x2, y2) in zip(rows, corners):
        row[0], row[1], row[70], row[71] = x1, y1, x2, y2
    return rows


def token_block(rows, cols, grid_w) -> list[int]:
    return [r * grid_w + c for r in rows for c in cols]


# --- normalisation and dense samples -----------------------------------------------------------------------------

def test_normalized_boxes_are_python_doubles():
    result = geometry.normalized_boxes(Layout(1500, 1000, "", (Instance((658, 176, 1199, 848), "chair"),)))
    assert result == [(658 / 1500, 176 / 1000, 1199 / 1500, 848 / 1000)]


def test_normalized_boxes_go_through_xywh_like_the_reference():
    # the reference stores w = x2 - x1 and then divides x1 + w, which is not always x2 in double
    result = geometry.normalized_boxes(Layout(1000, 1000, "", (Instance((109.1, 0, 384.8, 10), "pole"),)))
    assert result[0][2] == (109.1 + (384.8 - 109.1)) / 1000 == 0.3848000000000001
    assert 384.8 / 1000 == 0.38480000000000003


def test_dense_samples_are_x_major():
    row = geometry.dense_samples(one_box((0, 0, 50, 100)))[0]
    assert row.dtype == torch.float32
    # pairs 0..5 keep x = x1n while y walks down in steps of fl32(0.2)
    expected = [0, 0, 0, f32(0.2), 0, f32(0.4), 0, f32(0.6), 0, f32(0.8), 0, 1]
    assert row[:12].tolist() == [float(v) for v in expected]
    assert row[12:14].tolist() == [float(f32(0.1)), 0.0]  # pair 6: u = 1, v = 0
    assert row[70:72].tolist() == [0.5, 1.0]


def test_last_pair_is_the_recomputed_corner():
    row = geometry.dense_samples(one_box((20, 0, 100, 100)))[0]
    assert row[0:2].tolist() == [float(f32(0.2)), 0.0]
    x1n, x2n = f32(20 / 100), f32(100 / 100)
    step = f32((x2n - x1n) / f32(5))
    corner = f32(x1n + f32(f32(5) * step))
    assert row[70].item() == float(corner) == 1 - 2 ** -24  # not x2n = 1.0
    assert row[71].item() == 1.0


def test_dense_samples_match_the_official_layout():
    boxes = [(658, 176, 1199, 848), (230, 216, 678, 817), (2, 747, 1496, 900), (3, 7, 1000, 996)]
    result = geometry.dense_samples(Layout(1500, 1000, "", tuple(Instance(b, "x") for b in boxes)))
    expected, _ = ref.dense_boxes(boxes, 1500, 1000, max_objs=len(boxes))
    assert torch.equal(result, expected)


def test_dense_samples_of_an_empty_layout():
    assert geometry.dense_samples(Layout(64, 64)).shape == (0, 72)


# --- Fourier features --------------------------------------------------------------------------------------------

def test_fourier_frequencies_follow_the_official_expression():
    one = torch.zeros(1, 72)
    one[0, 3] = 1.0
    features = geometry.fourier_features(one)[0]
    official_freqs = 100 ** (torch.arange(8) / 8)
    assert features[4 * 144 + 3].item() == torch.tensor(10.0).sin().item()  # freq_4 = 100 ** 0.5 = 10
    for f in range(8):
        assert features[f * 144 + 3] == official_freqs[f].sin()
        assert features[f * 144 + 72 + 3] == official_freqs[f].cos()


def test_fourier_layout_is_frequency_then_sin_cos_then_coordinate():
    one = torch.zeros(2, 72)
    one[1, 5] = 0.5
    features = geometry.fourier_features(one)
    assert features.shape == (2, geometry.FOURIER_DIM) == (2, 1152)
    assert torch.equal(features[0], torch.cat([torch.zeros(72), torch.ones(72)] * 8))  # sin 0, cos 1
    expected = torch.cat([torch.zeros(72), torch.ones(72)] * 8)
    for f in range(8):
        angle = torch.tensor(0.5) * 100 ** torch.tensor(f / 8)
        expected[f * 144 + 5] = angle.sin()
        expected[f * 144 + 72 + 5] = angle.cos()
    torch.testing.assert_close(features[1], expected, rtol=0, atol=1e-6)


def test_fourier_runs_in_the_samples_dtype():
    ones = torch.ones(3, 72, dtype=torch.bfloat16)
    features = geometry.fourier_features(ones)
    assert features.dtype == torch.bfloat16
    freq_1 = torch.tensor(1.78125, dtype=torch.bfloat16)  # 100 ** (1/8) = 1.7783 rounded to bf16
    assert features[0, 144] == freq_1.sin()
    assert features[0, 144 + 72] == freq_1.cos()


def test_fourier_matches_the_official_embedding_on_real_boxes():
    samples = geometry.dense_samples(one_box((12, 30, 77, 99)))
    for dtype in (torch.float32, torch.bfloat16):
        expected = ref.fourier_embed(samples.to(dtype)[None])[0]
        assert torch.equal(geometry.fourier_features(samples.to(dtype)), expected)


# --- box → token indices ---------------------------------------------------------------------------------------

def indices_of(bbox, size=1024, grid=64):
    samples = geometry.dense_samples(one_box(bbox, size, size))
    return geometry.box_token_indices(samples, grid, grid)[0]


def test_full_image_box_covers_every_token():
    assert torch.equal(indices_of((0, 0, 1024, 1024)), torch.arange(64 * 64))


def test_one_token_box():
    assert indices_of((16, 16, 32, 32)).tolist() == [65]


def test_box_touching_the_bottom_right_edge():
    assert indices_of((960, 960, 1024, 1024)).tolist() == token_block(range(60, 64), range(60, 64), 64)


def test_box_on_grid_lines():
    result = indices_of((128, 256, 512, 768))  # corners 8, 16, 32, 48 tokens exactly
    assert result.dtype == torch.int64
    assert result.tolist() == token_block(range(16, 48), range(8, 32), 64)
    assert (result[0].item(), result[-1].item(), len(result)) == (16 * 64 + 8, 47 * 64 + 31, 32 * 24)


def test_degenerate_boxes_widen_to_one_token():
    assert indices_of((20, 20, 24, 24)).tolist() == [65]  # X1 = X2 = 1, Y1 = Y2 = 1
    assert indices_of((100, 0, 102, 1024)).tolist() == [r * 64 + 6 for r in range(64)]  # a one-column sliver


def test_recomputed_corner_drops_the_last_column():
    samples = geometry.dense_samples(one_box((20, 0, 100, 100)))  # row[70] = 1 - 2**-24, not 1.0
    result = geometry.box_token_indices(samples, 6, 6)[0]
    assert result.tolist() == token_block(range(0, 6), range(1, 5), 6)  # X2 = int(5.9999995) = 5


def test_all_zero_corners_have_no_tokens():
    result = geometry.box_token_indices(samples_with_corners((0, 0, 0, 0), (0, 0, 0, 0.5)), 4, 4)
    assert result[0].tolist() == []
    assert result[1].tolist() == [0, 4]  # X1 = X2 = 0 widened; rows 0..1


def test_slicing_clips_ends_and_wraps_negative_starts():
    result = geometry.box_token_indices(samples_with_corners(
        (0.5, 0.5, 1.5, 1.5),      # X2 = Y2 = 15 on a 10 grid: clipped to 10
        (-0.1, 0.0, 0.35, 0.2),    # X1 = int(-1.0000000149) = -1: slice [-1:3] is empty
        (-0.25, 0.0, 1.0, 0.1),    # X1 = -2: slice [-2:10] is cols 8, 9
    ), 10, 10)
    assert result[0].tolist() == token_block(range(5, 10), range(5, 10), 10)
    assert result[1].tolist() == []
    assert result[2].tolist() == [8, 9]


def test_token_indices_match_the_official_mask():
    generator = torch.Generator().manual_seed(0)
    corners = torch.rand(400, 4, generator=generator) * 1.6 - 0.3
    corners[::7, 2:] = corners[::7, :2]  # degenerate spans
    samples = samples_with_corners(*corners.tolist())
    for grid_h, grid_w in ((8, 8), (5, 12), (64, 96)):
        expected = ref.token_indices(samples, grid_h, grid_w)
        result = geometry.box_token_indices(samples, grid_h, grid_w)
        assert [r.tolist() for r in result] == [e.tolist() for e in expected]


# --- layout-token positions ------------------------------------------------------------------------------------

def test_layout_token_position_is_the_corner_midpoint():
    samples = geometry.dense_samples(Layout(1024, 1024, "", (
        Instance((0, 0, 240, 240), "a"),        # corners 0 and 15 → 7.5
        Instance((20, 20, 24, 24), "b"),        # X1 = X2 = 1: no widening here → 1.0
        Instance((128, 256, 512, 768), "c"),    # rows 16..48, cols 8..32
    )))
    result = geometry.layout_token_positions(samples, 64, 64)
    assert result.dtype == torch.float32
    assert result.tolist() == [[7.5, 7.5], [1.0, 1.0], [32.0, 20.0]]


def test_layout_token_position_rounds_through_bf16():
    samples = samples_with_corners((0, 0, 301 / 512, 514 / 1024))
    # cols (0 + 301) / 2 = 150.5 → bf16 150 (ties to even); rows (0 + 514) / 2 = 257 → bf16 256
    assert geometry.layout_token_positions(samples, 1024, 512).tolist() == [[256.0, 150.0]]


def test_layout_token_positions_match_the_official_ids():
    samples = geometry.dense_samples(Layout(1500, 1000, "", tuple(
        Instance(b, "x") for b in [(658, 176, 1199, 848), (2, 747, 1496, 900), (0, 0, 1500, 1000)])))
    expected = ref.layout_token_ids(samples, 62, 93)[:, 1:].to(torch.bfloat16).to(torch.float32)
    assert torch.equal(geometry.layout_token_positions(samples, 62, 93), expected)
