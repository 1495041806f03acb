"""Batched instance attention: indexing, chunking and the attention itself against a per-instance loop."""
import torch
import torch.nn.functional as F

from instanceassemble_core.assemble import build_instance_batch, instance_attention


def test_union_rows_tokens_and_counts_by_hand():
    batch = build_instance_batch([torch.tensor([0, 1, 5]), torch.tensor([1, 2]), torch.tensor([1])], rows=[0, 0, 1])
    assert batch.rows.tolist() == [0, 0, 1]
    assert list(zip(batch.union_rows.tolist(), batch.union_tokens.tolist())) == [(0, 0), (0, 1), (0, 2), (0, 5),
                                                                                 (1, 1)]
    assert batch.union_count.tolist() == [1, 2, 1, 1, 1]
    assert batch.flat_index(tokens_per_row=10, offset=3).tolist() == [3, 4, 5, 8, 14]
    assert sorted(i for chunk in batch.chunks for i in chunk.instances.tolist()) == [0, 1, 2]


def test_chunks_pad_similar_sizes_only():
    g = torch.Generator().manual_seed(0)
    sizes = [2800, 900, 850, 400, 120, 100, 30, 5, 1, 0] + torch.randint(1, 600, (40,), generator=g).tolist()
    tokens = [torch.randperm(4096, generator=g)[:n].sort().values for n in sizes]
    batch = build_instance_batch(tokens, rows=[0] * len(sizes), max_padding=1.25, small_width=32)
    assert sorted(i for chunk in batch.chunks for i in chunk.instances.tolist()) == list(range(len(sizes)))
    padded = sum(len(c.instances) * c.gather.shape[1] ** 2 for c in batch.chunks)
    floor = sum((1 + n) ** 2 for n in sizes)
    assert padded <= 1.25 ** 2 * floor + len(sizes) * 33 ** 2
    for chunk in batch.chunks:
        width = chunk.gather.shape[1] - 1
        members = [sizes[i] for i in chunk.instances.tolist()]
        assert max(members) == width and (width <= 32 or min(members) >= width / 1.25)


def loop_attention(img_q, img_k, img_v, layout_q, layout_k, layout_v, tokens, rows, union_index):
    """The reference's structure: one attention per instance, outputs summed per token and averaged."""
    total = torch.zeros(img_q.shape[0], img_q.shape[1] * img_q.shape[2])
    count = torch.zeros(img_q.shape[0])
    layout_out = []
    for k, (token_ids, row) in enumerate(zip(tokens, rows)):
        index = torch.tensor([union_index[(row, t)] for t in token_ids.tolist()], dtype=torch.long)
        seq = [torch.cat([lay[k:k + 1], img[index]]).transpose(0, 1)[None] for lay, img in
               ((layout_q, img_q), (layout_k, img_k), (layout_v, img_v))]
        out = F.scaled_dot_product_attention(*seq)[0].transpose(0, 1).reshape(1 + len(index), -1)
        layout_out.append(out[0])
        total.index_add_(0, index, out[1:])
        count.index_add_(0, index, torch.ones(len(index)))
    return total / count.clamp(min=1)[:, None], torch.stack(layout_out)


def test_batched_attention_equals_the_per_instance_loop():
    g = torch.Generator().manual_seed(1)
    tokens = [torch.arange(0, 40), torch.arange(20, 30), torch.tensor([7]), torch.tensor([], dtype=torch.long),
              torch.arange(0, 64), torch.arange(5, 45, 3)]
    rows = [0, 0, 0, 0, 1, 1]
    batch = build_instance_batch(tokens, rows, token_budget=100)
    assert len(batch.chunks) > 1
    union = {(r, t): i for i, (r, t) in enumerate(zip(batch.union_rows.tolist(), batch.union_tokens.tolist()))}
    heads, head_dim = 2, 8
    img = [torch.randn(len(union), heads, head_dim, generator=g) for _ in range(3)]
    lay = [torch.randn(len(tokens), heads, head_dim, generator=g) for _ in range(3)]
    img_out, layout_out = instance_attention(*img, *lay, batch)
    expected_img, expected_layout = loop_attention(*img, *lay, tokens, rows, union)
    torch.testing.assert_close(img_out, expected_img, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(layout_out, expected_layout, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(layout_out[3], lay[2][3].reshape(-1))  # an empty box: the layout token sees itself
