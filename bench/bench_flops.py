"""Analytic FLOP counts (2 per multiply-add; matrix products and attention only, element-wise work ignored).

D width, M = 4D feed-forward width, r LoRA rank, S image tokens, T text tokens, n_k tokens of box k, U = |∪ T_k|.
A LoRA'd module adds 2r(in + out) per token. Attention over N tokens costs 4·N²·D (QKᵀ and AV).

- stock joint block (Flux double / SD3): every token of both streams goes through qkv, proj and the FFN, then one
  joint attention over T + S tokens (a context-pre-only block stops its text stream after qkv).
- stock Flux single block: linear1 (D → 3D + M) and linear2 (D + M → D) on T + S tokens, attention over T + S.
- branch floor (b): the per-token work (Q/K/V, output projection(s), ``layout_forward``) once over U, the
  attention per box over its own 1 + n_k tokens, the layout tokens' own work, and (joint blocks) the extra FFN
  over all S image tokens.
- loop (a): the same, except that the per-token work runs over Σ n_k (every token once per box covering it).
Modulation linears act on one vector per row and are counted for completeness.
"""


def linear(fan_in: int, fan_out: int, rank: int = 0) -> int:
    """FLOPs per token of one Linear, plus a rank-``rank`` LoRA side path when rank > 0."""
    return 2 * fan_in * fan_out + (2 * rank * (fan_in + fan_out) if rank else 0)


def attention(tokens: int, dim: int) -> int:
    return 4 * tokens * tokens * dim


def stock_joint(dim: int, img: int, txt: int, context_pre_only: bool = False) -> int:
    mlp = 4 * dim
    per_token = linear(dim, 3 * dim) + linear(dim, dim) + linear(dim, mlp) + linear(mlp, dim)
    txt_per_token = linear(dim, 3 * dim) if context_pre_only else per_token
    modulation = linear(dim, 6 * dim) + linear(dim, (2 if context_pre_only else 6) * dim)
    return img * per_token + txt * txt_per_token + attention(img + txt, dim) + modulation


def stock_single(dim: int, img: int, txt: int) -> int:
    mlp = 4 * dim
    per_token = linear(dim, 3 * dim + mlp) + linear(dim + mlp, dim)
    return (img + txt) * per_token + attention(img + txt, dim) + linear(dim, 3 * dim)


def joint_branch(dim: int, rank: int, img: int, sizes: list[int], covered: int,
                 context_pre_only: bool = False) -> int:
    """Branch of a joint block; ``covered`` = U for the floor (b), Σ n_k for the loop (a)."""
    mlp = 4 * dim
    per_token = 3 * linear(dim, dim, rank) + linear(dim, dim, rank) + linear(dim, dim)   # q,k,v; to_out; layout_forward
    layout_token = 3 * linear(dim, dim, rank)
    if not context_pre_only:
        layout_token += linear(dim, dim, rank) + linear(dim, mlp) + linear(mlp, dim, rank)  # to_add_out, layout FFN
    extra_ffn = linear(dim, mlp) + linear(mlp, dim, rank)
    modulation = linear(dim, 6 * dim, rank) + linear(dim, (2 if context_pre_only else 6) * dim, rank)
    return (covered * per_token + len(sizes) * layout_token + sum(attention(n + 1, dim) for n in sizes)
            + img * extra_ffn + modulation)


def single_branch(dim: int, rank: int, sizes: list[int], covered: int, per_instance_modulation: bool) -> int:
    """Branch of the Flux single block; the layout tokens go through linear1 (their linear2 output is unused)."""
    mlp = 4 * dim
    linear1 = 3 * linear(dim, dim, rank) + linear(dim, mlp, rank)
    per_token = linear1 + linear(dim + mlp, dim, rank) + linear(dim, dim)   # linear1; linear2; layout_forward
    modulation = linear(dim, 3 * dim, rank) * (len(sizes) if per_instance_modulation else 1)
    return (covered * per_token + len(sizes) * linear1 + sum(attention(n + 1, dim) for n in sizes) + modulation)


def predictions(kind: str, dim: int, rank: int, img: int, txt: int, sizes: list[int], union: int,
                context_pre_only: bool = False) -> dict[str, int]:
    """FLOPs of (a) loop, (b) branch floor and (c) stock block for one block kind and layout."""
    total = sum(sizes)
    if kind == "flux-single":
        return {"a": single_branch(dim, rank, sizes, total, True) + len(sizes) * linear(dim + 4 * dim, dim, rank),
                "b": single_branch(dim, rank, sizes, union, False),
                "c": stock_single(dim, img, txt)}
    return {"a": joint_branch(dim, rank, img, sizes, total, context_pre_only),
            "b": joint_branch(dim, rank, img, sizes, union, context_pre_only),
            "c": stock_joint(dim, img, txt, context_pre_only)}
