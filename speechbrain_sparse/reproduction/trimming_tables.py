"""Tables I and II of the trimming paper (Genova et al. 2024) and its claims.

A *record* is one finished run of ``recipes/Synthetic/ASR/structured/``:
``{"task", "kind" (base | ssf | trim | scratch), "threshold", "fraction"
(parameters removed / encoder parameters), "score", "folder"}``; the score
is the test WER (ASR, lower is better) or accuracy (classification, higher).

* **Table I**: per task, Base, SSF, Scratch and Ours at the trim runs nearest
  to 25 / 50 / 75 % removed (the achieved % shown), and "Best": the largest
  trimmed % whose score is within a 5 % relative drop of Base, and its score.
* **Table II**: for each task type (classification, ASR), the trimmed encoder
  within 5 % of Base that removes the most, measured by :func:`model_cost`
  (fp32 MB, GFLOPs and GMACs of a 4-s input with eager attention (torch's
  counter misses SDPA on CPU), and the latency speedup at batch 1), averaged
  over the tasks of the type.
* **Claims**, each from a paired bootstrap over the test utterances
  (:func:`~speechbrain_sparse.reproduction.bootstrap.paired_bootstrap`; WER for
  ASR, the 0/1 error for classification): trimming is not worse than Base up to
  25 %, trimming beats Scratch at equal size, SSF is not worse than trimming,
  ASR tolerates less trimming than classification, speedup / FLOPs ratio
  >= 0.9.

Example
-------
>>> records = [{"task": "dialect_id", "kind": "base", "score": 0.80},
...            {"task": "dialect_id", "kind": "trim", "score": 0.79,
...             "fraction": 0.30, "threshold": 0.5},
...            {"task": "dialect_id", "kind": "trim", "score": 0.70,
...             "fraction": 0.60, "threshold": 0.4}]
>>> best_within_drop(records, "dialect_id")["fraction"]
0.3
>>> nearest_trim(records, "dialect_id", 0.5)["threshold"]
0.4
"""

import statistics
import time

import torch

from speechbrain_sparse.reproduction.bootstrap import (
    paired_bootstrap,
    read_utterance_errors,
)

#: Task -> (metric shown, bootstrap metric of utterances_<set>.csv, lower is better)
TASKS = {"asr": ("WER", "WER", True), "dialect_id": ("ACC", "ERR", False),
         "speaker_id": ("ACC", "ERR", False)}
TARGETS = (0.25, 0.5, 0.75)
MAX_DROP = 0.05


def run_score(results, task):
    """The score of a run's ``results.json`` (its one test set)."""
    metric = TASKS[task][0]
    (stats,) = results.values()
    return float(stats[metric])


def within_drop(score, base, task, drop=MAX_DROP):
    """True when ``score`` is at most ``drop`` (relative) worse than ``base``."""
    if TASKS[task][2]:
        return score <= base * (1 + drop)
    return score >= base * (1 - drop)


def _of(records, task, kind):
    return [r for r in records if r["task"] == task and r["kind"] == kind]


def nearest_trim(records, task, target):
    """The trim run of ``task`` whose removed fraction is nearest ``target``."""
    trims = _of(records, task, "trim")
    return min(trims, key=lambda r: abs(r["fraction"] - target)) if trims else None


def best_within_drop(records, task, drop=MAX_DROP):
    """The trim run removing the most while within ``drop`` of Base (or None)."""
    base = _of(records, task, "base")
    if not base:
        return None
    fine = [r for r in _of(records, task, "trim")
            if within_drop(r["score"], base[0]["score"], task, drop)]
    return max(fine, key=lambda r: r["fraction"]) if fine else None


def _cell(record, with_fraction=False):
    if record is None:
        return "-"
    score = record["score"]
    text = f"{score:.3f}" if score <= 1.5 else f"{score:.2f}"
    return f"{text} ({100 * record['fraction']:.0f} %)" if with_fraction else text


def table_one(records, tasks):
    """Markdown of Table I and its CSV rows."""
    header = ("| task | metric | Base | SSF | Scratch 25 | Scratch 50 | Scratch 75 | "
              "Ours 25 | Ours 50 | Ours 75 | Best trim % | Best score |")
    lines = [header, "|" + "---|" * 12]
    rows = []
    for task in tasks:
        base, ssf = _of(records, task, "base"), _of(records, task, "ssf")
        ours = [nearest_trim(records, task, t) for t in TARGETS]
        scratch = [next((r for r in _of(records, task, "scratch")
                         if o is not None and r["threshold"] == o["threshold"]), None)
                   for o in ours]
        best = best_within_drop(records, task)
        cells = [_cell(base[0] if base else None), _cell(ssf[0] if ssf else None),
                 *(_cell(r, True) for r in scratch), *(_cell(r, True) for r in ours),
                 f"{100 * best['fraction']:.1f}" if best else "-",
                 _cell(best)]
        lines.append(f"| {task} | {TASKS[task][0]} | " + " | ".join(cells) + " |")
        rows.append({"task": task, "metric": TASKS[task][0],
                     **dict(zip(["base", "ssf", "scratch25", "scratch50", "scratch75",
                                 "ours25", "ours50", "ours75", "best_trim_pct",
                                 "best_score"], cells))})
    return "\n".join(lines), rows


def model_cost(model, seconds=4.0, threads=2, warmups=3, runs=10, baseline=None):
    """Size, FLOPs and latency of an encoder on one ``seconds``-long input.

    Arguments
    ---------
    model : torch.nn.Module
        A (trimmed or not) ``transformers`` wav2vec2-family model.
    seconds : float
        Input length at 16 kHz.
    threads : int
        ``torch.set_num_threads`` while timing.
    warmups, runs : int
        Untimed and timed forward passes (median reported).
    baseline : torch.nn.Module, optional
        Timed in turn with ``model`` (interleaved), for ``speedup``.

    Returns
    -------
    dict
        ``params``, ``mb`` (fp32 parameters), ``gflops``, ``gmacs``,
        ``latency_s`` and, with a baseline, ``speedup``.
    """
    from speechbrain_sparse.surgery import count_flops, count_parameters

    generator = torch.Generator().manual_seed(0)
    wav = torch.randn(1, int(16000 * seconds), generator=generator)
    for module in (model, baseline):
        if module is not None:  # measured, not trained (and no grad hooks)
            module.eval().requires_grad_(False)
    flops = count_flops(model, lambda module: module(wav))
    params = count_parameters(model)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    models = {"model": model} if baseline is None else {"model": model,
                                                         "baseline": baseline}
    times = {name: [] for name in models}
    with torch.no_grad():
        for index in range(warmups + runs):
            for name, module in models.items():
                start = time.perf_counter()
                module(wav)
                if index >= warmups:
                    times[name].append(time.perf_counter() - start)
    torch.set_num_threads(previous)
    cost = {"params": params, "mb": params * 4 / 1e6, "gflops": flops / 1e9,
            "gmacs": flops / 2e9, "latency_s": statistics.median(times["model"])}
    if baseline is not None:
        cost["speedup"] = statistics.median(times["baseline"]) / cost["latency_s"]
    return cost


def table_two(costs):
    """Markdown of Table II from ``{row label: cost dict}`` (base first)."""
    lines = ["| model | params | size (MB) | GFLOPs | GMACs | speedup | "
             "speedup / FLOPs ratio |", "|---|---|---|---|---|---|---|"]
    base = next(iter(costs.values()))
    for label, cost in costs.items():
        ratio = base["gflops"] / cost["gflops"]
        speedup = cost.get("speedup", 1.0)
        lines.append(f"| {label} | {round(cost['params']):,} | {cost['mb']:.2f} | "
                     f"{cost['gflops']:.3f} | {cost['gmacs']:.3f} | x{speedup:.2f} | "
                     f"{speedup / ratio:.2f} |")
    return "\n".join(lines)


def utterance_counts(record):
    """``{utterance: (errors, tokens)}`` of a run's test set, for the bootstrap."""
    task = record["task"]
    path = record["folder"] / f"utterances_{task}_test.csv"
    return read_utterance_errors(path, TASKS[task][1])


def compare(a, b):
    """Paired bootstrap of run ``b`` against run ``a`` (lower error is better)."""
    return paired_bootstrap(utterance_counts(a), utterance_counts(b))


def claims(records, tasks, costs=None):
    """``[(claim, verdict, evidence)]`` of the paper's claims on our runs."""
    found = []
    for task in tasks:
        base = _of(records, task, "base")
        quarter = nearest_trim(records, task, 0.25)
        metric = TASKS[task][1]
        if base and quarter and quarter["fraction"] <= 0.35:
            result = compare(base[0], quarter)
            found.append((f"{task}: trimming {100 * quarter['fraction']:.0f} % is not "
                          "worse than Base", result.outcome() != "worse",
                          result.describe(metric)))
        for scratch in _of(records, task, "scratch"):
            trim = next((r for r in _of(records, task, "trim")
                         if r["threshold"] == scratch["threshold"]), None)
            if trim is not None:
                result = compare(scratch, trim)
                found.append((f"{task}: trimming beats Scratch at "
                              f"{100 * trim['fraction']:.0f} %",
                              result.outcome() == "better", result.describe(metric)))
        ssf = _of(records, task, "ssf")
        if ssf and quarter:
            result = compare(quarter, ssf[0])
            found.append((f"{task}: SSF is not worse than trimming "
                          f"{100 * quarter['fraction']:.0f} %",
                          result.outcome() != "worse", result.describe(metric)))
    best = {task: best_within_drop(records, task) for task in tasks}
    classification = [best[t]["fraction"] for t in tasks if t != "asr" and best[t]]
    if "asr" in tasks and classification:
        asr = best["asr"]["fraction"] if best["asr"] else 0.0
        found.append(("ASR tolerates less trimming than classification (largest % "
                      "within 5 % of Base)", asr < statistics.mean(classification),
                      f"ASR {100 * asr:.0f} % vs classification "
                      f"{100 * statistics.mean(classification):.0f} %"))
    for label, cost in (costs or {}).items():
        if "speedup" in cost and label != "base":
            ratio = cost["speedup"] / (next(iter(costs.values()))["gflops"]
                                       / cost["gflops"])
            found.append((f"{label}: speedup / FLOPs ratio >= 0.9", ratio >= 0.9,
                          f"x{cost['speedup']:.2f} for {ratio:.2f} of the FLOPs "
                          "ratio"))
    return found
