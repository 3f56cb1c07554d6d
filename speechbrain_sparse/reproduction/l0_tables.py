"""Tables 1-3 of the task-agnostic structured pruning paper (002) from our runs.

The upstreams are the frozen teacher ("base") and the encoders pruned by the
L0 + distillation runs ("proposed": FAHP + STE, "no_ste", "headlevel": w/o
FAHP); each is probed on every task of the mini-SUPERB
(:mod:`speechbrain_sparse.data.mini_superb`). A *probe* record is
``{"upstream", "task", "score", "folder"}``; an *L0* record is the run's
``results.json`` (target and achieved sparsity, parameters) plus ``folder``.

* Table 1: one row per upstream, a column per task (WER / accuracy) and the
  parameters (002 Table 1, SUPERB in its place).
* Table 2: parameters, fp32 MB, GFLOPs of a 4-s input and the measured
  speedup, and the whole MHA / FFN blocks removed (002 Table 2).
* Table 3: proposed vs w/o STE on every task (002 Table 3).
* Claims (paired bootstraps over test utterances): FAHP beats head-level on
  ASR; STE removes more whole blocks and is faster at equal parameters;
  achieved sparsity within 1 % of the target.

Example
-------
>>> import torch
>>> mask = {"a.attention:mha": torch.tensor([False]),
...         "a.feed_forward:ffn_unit": torch.zeros(4, dtype=torch.bool),
...         "b.attention:head_vo_dim": torch.tensor([True, False])}
>>> removed_blocks(mask)
{'mha': 1, 'ffn': 1}
"""

from speechbrain_sparse.reproduction.trimming_tables import (
    TASKS,
    compare,
)

LABELS = {"base": "Base (teacher)", "proposed": "Proposed (FAHP + STE)",
          "no_ste": "w/o STE", "headlevel": "w/o FAHP (head gates)"}


def removed_blocks(unit_mask):
    """Whole attention / FFN blocks a (hierarchical) unit mask removes: its block
    gate closed, or no head / v-o dim / FFN unit left."""
    counts, blocks = {"mha": 0, "ffn": 0}, {}
    sides = {"mha": "mha", "head": "mha", "head_vo_dim": "mha", "ffn": "ffn",
             "ffn_unit": "ffn"}  # q/k dims alone do not empty a block
    for group, kept in unit_mask.items():
        block, _, kind = group.rpartition(":")
        if kind in sides:
            blocks.setdefault((block, sides[kind]), []).append(bool(kept.any()))
    for (_, side), alive in blocks.items():
        counts[side] += not all(alive)
    return counts


def _score(records, upstream, task):
    found = [r for r in records if r["upstream"] == upstream and r["task"] == task]
    return found[0] if found else None


def _text(record):
    if record is None:
        return "-"
    score = record["score"]
    return f"{score:.3f}" if score <= 1.5 else f"{score:.2f}"


def table_one(probes, tasks, params):
    """Markdown: upstream rows, task columns, parameters."""
    lines = ["| upstream | params | " + " | ".join(
        f"{task} ({TASKS[task][0]})" for task in tasks) + " |",
        "|---|---|" + "---|" * len(tasks)]
    for upstream in LABELS:
        if upstream not in params:
            continue
        cells = [_text(_score(probes, upstream, task)) for task in tasks]
        lines.append(f"| {LABELS[upstream]} | {params[upstream]:,} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_two(costs, blocks):
    """Markdown: size, FLOPs, speedup and whole blocks removed per upstream."""
    lines = ["| upstream | params | MB | GFLOPs (4 s) | speedup | MHA removed | "
             "FFN removed |", "|---|---|---|---|---|---|---|"]
    for upstream, cost in costs.items():
        removed = blocks.get(upstream, {"mha": 0, "ffn": 0})
        lines.append(f"| {LABELS[upstream]} | {round(cost['params']):,} | "
                     f"{cost['mb']:.2f} | {cost['gflops']:.3f} | "
                     f"x{cost.get('speedup', 1.0):.2f} | {removed['mha']} | "
                     f"{removed['ffn']} |")
    return "\n".join(lines)


def table_three(probes, tasks):
    """Markdown: proposed vs w/o STE on every task."""
    lines = ["| upstream | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    for upstream in ("proposed", "no_ste"):
        lines.append(f"| {LABELS[upstream]} | " + " | ".join(
            _text(_score(probes, upstream, task)) for task in tasks) + " |")
    return "\n".join(lines)


def claims(probes, l0_runs, costs, blocks, tolerance=0.01):
    """``[(claim, verdict, evidence)]``."""
    found = []
    fahp, heads = _score(probes, "proposed", "asr"), _score(probes, "headlevel", "asr")
    if fahp and heads:
        result = compare(heads, fahp)
        found.append(("FAHP beats head-level gates on ASR",
                      result.outcome() == "better", result.describe("WER")))
    if "proposed" in blocks and "no_ste" in blocks:
        ste, plain = blocks["proposed"], blocks["no_ste"]
        found.append(("STE removes more whole blocks",
                      ste["mha"] + ste["ffn"] > plain["mha"] + plain["ffn"],
                      f"{ste['mha']} MHA + {ste['ffn']} FFN vs {plain['mha']} + "
                      f"{plain['ffn']}"))
    if "proposed" in costs and "no_ste" in costs:
        ste, plain = costs["proposed"], costs["no_ste"]
        equal = abs(ste["params"] - plain["params"]) <= 0.05 * plain["params"]
        found.append(("STE is faster at (within 5 %) equal parameters",
                      equal and ste["speedup"] > plain["speedup"],
                      f"x{ste['speedup']:.2f} ({round(ste['params']):,} params) vs "
                      f"x{plain['speedup']:.2f} ({round(plain['params']):,})"))
    for name, run in l0_runs.items():
        gap = run["achieved_sparsity"] - run["target_sparsity"]
        found.append((f"{LABELS[name]}: achieved sparsity within 1 % of the target",
                      abs(gap) <= tolerance,
                      f"achieved {run['achieved_sparsity']:.3f}, target "
                      f"{run['target_sparsity']:.3f}"))
    return found
