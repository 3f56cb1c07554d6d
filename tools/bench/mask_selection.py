"""Times diff-mask selection (scores + exact global top-K) at the paper's large size.

The state dicts are random tensors shaped like the paper's Transformer (Large),
87.5M parameters: 16 encoder / 8 decoder layers, d_model 512, d_ffn 2048, a
convolutional front-end, an output embedding and CTC / sequence heads. The
shapes are approximate (SpeechBrain's layout with a vocabulary chosen so the
total is ~87.5M), which is all selection cost depends on.

Usage: ``python tools/bench/mask_selection.py [--repeats 3] [--density 0.1]``
Last line: ``RESULT selection_s_87M=<median seconds> params=<int> target_s=2.0``
"""

import argparse
import statistics
import time

import torch

from speechbrain_sparse.scores import diff_scores
from speechbrain_sparse.topk import select_topk


def large_transformer_shapes(d_model=512, d_ffn=2048, enc=16, dec=8, vocab=2000):
    """Returns ``{name: shape}`` of an approximate SpeechBrain Transformer (Large)."""
    shapes = {
        "0.convblock_0.conv.weight": (64, 1, 3, 3),
        "0.convblock_0.conv.bias": (64,),
        "0.convblock_1.conv.weight": (32, 64, 3, 3),
        "0.convblock_1.conv.bias": (32,),
        "1.custom_src_module.layers.0.w.weight": (d_model, 640),
        "1.custom_src_module.layers.0.w.bias": (d_model,),
        "1.custom_tgt_module.layers.0.emb.Embedding.weight": (vocab, d_model),
    }

    def block(prefix, attentions):
        for att in attentions:
            shapes[f"{prefix}.{att}.att.in_proj_weight"] = (3 * d_model, d_model)
            shapes[f"{prefix}.{att}.att.in_proj_bias"] = (3 * d_model,)
            shapes[f"{prefix}.{att}.att.out_proj.weight"] = (d_model, d_model)
            shapes[f"{prefix}.{att}.att.out_proj.bias"] = (d_model,)
        shapes[f"{prefix}.pos_ffn.ffn.0.weight"] = (d_ffn, d_model)
        shapes[f"{prefix}.pos_ffn.ffn.0.bias"] = (d_ffn,)
        shapes[f"{prefix}.pos_ffn.ffn.3.weight"] = (d_model, d_ffn)
        shapes[f"{prefix}.pos_ffn.ffn.3.bias"] = (d_model,)
        for norm in range(1, len(attentions) + 2):
            shapes[f"{prefix}.norm{norm}.norm.weight"] = (d_model,)
            shapes[f"{prefix}.norm{norm}.norm.bias"] = (d_model,)

    for i in range(enc):
        block(f"1.encoder.layers.{i}", ["self_att"])
    for i in range(dec):
        block(f"1.decoder.layers.{i}", ["self_attn", "multihead_attn"])
    for name in ("1.encoder.norm", "1.decoder.norm"):
        shapes[f"{name}.norm.weight"] = shapes[f"{name}.norm.bias"] = (d_model,)
    for head in ("2", "3"):  # seq_lin, ctc_lin
        shapes[f"{head}.w.weight"], shapes[f"{head}.w.bias"] = (
            (vocab, d_model),
            (vocab,),
        )
    return shapes


def main():
    """Runs the benchmark and prints the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--density", type=float, default=0.1)
    parser.add_argument("--vocab", type=int, default=2000)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    shapes = large_transformer_shapes(vocab=args.vocab)
    pretrained = {n: torch.randn(s, generator=generator) for n, s in shapes.items()}
    finetuned = {
        n: t + 0.01 * torch.randn(t.shape, generator=generator)
        for n, t in pretrained.items()
    }
    params = sum(t.numel() for t in pretrained.values())
    print(
        f"{params} parameters in {len(shapes)} tensors, "
        f"{torch.get_num_threads()} threads, density {args.density}"
    )
    timings = []
    for repeat in range(args.repeats):
        start = time.perf_counter()
        mask = select_topk(
            diff_scores(pretrained, finetuned), args.density, method="diff"
        )
        timings.append(time.perf_counter() - start)
        expected = int(args.density * params + 0.5)
        assert mask.num_selected() == expected, (mask.num_selected(), expected)
        print(f"run {repeat}: {timings[-1]:.3f} s, selected {mask.num_selected()}")
    print(
        f"RESULT selection_s_87M={statistics.median(timings):.3f} params={params} "
        f"target_s=2.0"
    )


if __name__ == "__main__":
    main()
