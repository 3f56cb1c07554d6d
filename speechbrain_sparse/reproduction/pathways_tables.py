"""Tables 1-3 of the Dynamic ASR Pathways paper and its claims, from the runs.

A table row names one run for all languages (a multilingual run) or one run per
language (``imp_<language>``, ...); a cell is the WER (or CER) of that run on
the language's test set (``<language>_test`` in its ``results.json``), the
``Avg`` the mean over the table's languages (``None``, shown ``-``, when a cell
is missing). The claims are judged with the paired bootstrap over the test
utterances (:mod:`~speechbrain_sparse.reproduction.bootstrap`, one stratum per
language, 1,000 resamples): **holds** when the 95 % interval of the difference
excludes 0 in the claimed direction, **does not hold** when it excludes 0 the
other way, **not resolved** when it contains 0, **n/a** when a run is missing.

Example
-------
>>> results = {"dense_multi": {"fr_test": {"WER": 20.0}, "nl_test": {"WER": 30.0}}}
>>> rows = table_rows(results, [("(1)", "Dense multi", "dense_multi")], ["fr", "nl"],
...                   ["Stage", "Model"])
>>> rows[0]["fr"], rows[0]["Avg"], rows[0]["CER Avg"]
(20.0, 25.0, None)
"""

from pathlib import Path

from speechbrain_sparse.reproduction.bootstrap import (
    RESAMPLES,
    paired_bootstrap,
    read_utterance_errors,
)
from speechbrain_sparse.reproduction.claims import VERDICTS
from speechbrain_sparse.reproduction.pathways_plan import (
    DENSE,
    pathway_run_name,
)
from speechbrain_sparse.reproduction.tables import write_table


def per_language(prefix):
    """A row's runs: ``<prefix>_<language>`` for each language."""
    return lambda language: f"{prefix}_{language}"


def table1(languages):
    """Table 1's rows: ``(stage, model, mask can change, sparsity, training, runs)``."""
    pathways = {init: pathway_run_name("pathways", init, 0.7, languages)
                for init in ("imp", "lth")}
    return [
        ("Ref.", "Dense mono", "/", "0%", "Monolingual", per_language("dense_mono")),
        ("(1)", "Dense multi", "/", "0%", "Multilingual", DENSE),
        ("(2)", "LAP", "No", "70%", "Multilingual", "lap"),
        ("(2)", "IMP", "No", "70%", "Monolingual", per_language("imp")),
        ("(2)", "LTH", "No", "70%", "Monolingual", per_language("lth")),
        ("(3)", "ASR Pathways (IMP-70%)", "No", "70%", "Multilingual",
         pathways["imp"]),
        ("(3)", "ASR Pathways (LTH-70%)", "No", "70%", "Multilingual",
         pathways["lth"]),
        ("Proposed", "IMP (adaptive)", "Yes", "70%", "Monolingual",
         per_language("adaptive_imp")),
        ("Proposed", "LTH (adaptive)", "Yes", "70%", "Monolingual",
         per_language("adaptive_lth")),
    ]


TABLE1_COLUMNS = ["Stage", "Model", "Mask can change?", "Sparsity", "Training"]
TABLE2_COLUMNS = ["Model", "Initialization", "Mask change?", "Sparsity"]


def table2(languages, levels=(0.7, 0.5, 0.2)):
    """Table 2's rows (the bilingual ``languages``)."""
    rows = [("ASR Pathways", f"{init.upper()}-70%", "No", "70%",
             pathway_run_name("pathways", init, 0.7, languages))
            for init in ("lth", "lap")]
    for init in ("lth", "lap"):
        rows += [("Dynamic ASR Pathways", f"{init.upper()}-{round(level * 100)}%",
                  "Yes", "70%", pathway_run_name("dynamic", init, level, languages))
                 for level in levels]
    return rows


def table3(languages, dynamic_level=0.5):
    """Table 3's rows (all languages)."""
    return [("ASR Pathways", "LTH-70%", "No", "70%",
             pathway_run_name("pathways", "lth", 0.7, languages)),
            ("Dynamic ASR Pathways", f"LTH-{round(dynamic_level * 100)}%", "Yes",
             "70%", pathway_run_name("dynamic", "lth", dynamic_level, languages))]


def run_of(runs, language):
    """The run a row uses for ``language``."""
    return runs(language) if callable(runs) else runs


def _value(results, run, language, metric):
    stats = (results.get(run) or {}).get(f"{language}_test") or {}
    return None if stats.get(metric) is None else float(stats[metric])


def table_rows(results, spec, languages, columns):
    """Rows ``{column: value, <language>: WER, "Avg", "CER <language>", "CER Avg"}``."""
    rows = []
    for entry in spec:
        *labels, runs = entry
        row = dict(zip(columns, labels))
        for metric, prefix in (("WER", ""), ("CER", "CER ")):
            values = [_value(results, run_of(runs, x), x, metric) for x in languages]
            for language, value in zip(languages, values):
                row[f"{prefix}{language}"] = value
            row[f"{prefix}Avg"] = (None if None in values
                                   else sum(values) / len(values))
        rows.append(row)
    return rows


def score_columns(languages):
    """The WER columns, then the CER ones."""
    return [*languages, "Avg", *(f"CER {x}" for x in languages), "CER Avg"]


class Judge:
    """Paired bootstrap of two rows' test errors, one stratum per language."""

    def __init__(self, out_dir, metric="WER", resamples=RESAMPLES, seed=0):
        self.out_dir = Path(out_dir)
        self.metric, self.resamples, self.seed = metric, resamples, seed

    def counts(self, runs, languages):
        """Per-language ``{ID: (errors, tokens)}``; LookupError when missing."""
        sets = []
        for language in languages:
            path = (self.out_dir / run_of(runs, language)
                    / f"utterances_{language}_test.csv")
            if not path.is_file():
                raise LookupError(f"no {path.relative_to(self.out_dir)}")
            sets.append(read_utterance_errors(path, self.metric))
        return sets

    def compare(self, baseline, candidate, languages):
        """``Comparison`` of candidate - baseline, or ``None`` and why."""
        try:
            return paired_bootstrap(self.counts(baseline, languages),
                                    self.counts(candidate, languages),
                                    self.resamples, self.seed), None
        except (LookupError, ValueError) as error:
            return None, str(error)

    def sentence(self, comparison, why, names):
        """``Δ WER -1.20, 95 % CI [...], P(B better) 0.97: B - A, 240 utterances``."""
        if comparison is None:
            return f"n/a: {why}"
        relative = (100 * comparison.difference / comparison.rate_a
                    if comparison.rate_a else float("nan"))
        return (f"{comparison.describe(self.metric)}, {relative:+.1f} % relative, "
                f"P({names[1]} better) {comparison.p_b_better:.2f}: {names[1]} "
                f"{comparison.rate_b:.2f} vs {names[0]} {comparison.rate_a:.2f}, "
                f"{comparison.utterances} test utterances")


def _combine(outcomes):
    """All better: holds; any worse: does not hold; a missing run: n/a."""
    if None in outcomes or not outcomes:
        return "n/a"
    if "worse" in outcomes:
        return "does not hold"
    return "holds" if set(outcomes) == {"better"} else "not resolved"


def claim_adaptive(judge, languages):
    """Adaptive masking beats fixed masks (Table 1: adaptive IMP/LTH vs IMP/LTH)."""
    lines, outcomes = [], []
    for method in ("imp", "lth"):
        comparison, why = judge.compare(per_language(method),
                                        per_language(f"adaptive_{method}"), languages)
        outcomes.append(comparison and comparison.outcome())
        lines.append(f"  - adaptive {method.upper()} vs fixed {method.upper()}: "
                     f"**{VERDICTS.get(outcomes[-1], 'n/a')}** ("
                     + judge.sentence(comparison, why, (method, f"adaptive_{method}"))
                     + ")")
    return [f"- adaptive masking beats fixed masks (paper: -5.3 % relative): "
            f"**{_combine(outcomes)}**", *lines]


def claim_dynamic_best(judge, languages):
    """Dynamic pathways from LTH-50 beat every other row of Table 2."""
    best = pathway_run_name("dynamic", "lth", 0.5, languages)
    lines, outcomes = [], []
    for *labels, run in table2(languages):
        if run == best:
            continue
        comparison, why = judge.compare(run, best, languages)
        outcomes.append(comparison and comparison.outcome())
        lines.append(f"  - vs {labels[0]} {labels[1]}: "
                     f"**{VERDICTS.get(outcomes[-1], 'n/a')}** ("
                     + judge.sentence(comparison, why, (run, "dynamic LTH-50"))
                     + ")")
    return [f"- dynamic pathways from LTH-50 is the best of Table 2 (paper: -5.8 % "
            f"relative to Pathways LTH-70): **{_combine(outcomes)}**", *lines]


def mask_distances(out_dir, languages, level=0.7):
    """Language -> mean Jaccard of its LTH mask with the others' (or None)."""
    from speechbrain_sparse.masks import ParameterMask

    paths = {x: Path(out_dir) / f"lth_{x}" / "masks" / f"s{level:g}.pt"
             for x in languages}
    if len(languages) < 2 or not all(path.is_file() for path in paths.values()):
        return None
    masks = {x: ParameterMask.load(path) for x, path in paths.items()}
    return {x: sum(masks[x].jaccard(masks[y]) for y in languages if y != x)
            / (len(languages) - 1) for x in languages}


def claim_lap(judge, languages, distances):
    """LAP (one mask) hurts the language whose own mask is farthest the most."""
    if distances is None:
        return ["- LAP hurts the language farthest from the others the most: **n/a** "
                "(the LTH-70 masks of every language are needed)"]
    farthest = min(distances, key=distances.get)
    deltas, lines = {}, []
    for language in languages:
        comparison, why = judge.compare(DENSE, "lap", [language])
        deltas[language] = comparison
        lines.append(f"  - {language} (mean Jaccard {distances[language]:.3f}): "
                     + judge.sentence(comparison, why, ("dense multi", "LAP")))
    far = deltas[farthest]
    if far is None:
        verdict = "n/a"
    elif far.outcome() == "better":
        verdict = "does not hold (LAP better there)"
    elif far.outcome() == "worse" and all(
            d is None or d.difference <= far.difference for d in deltas.values()):
        verdict = "holds"
    elif any(d is not None and d.outcome() == "worse" and d.difference > far.difference
             for d in deltas.values()):
        verdict = "does not hold (another language is hurt more)"
    else:
        verdict = "not resolved"
    return [f"- LAP hurts the language farthest from the others the most (paper: "
            f"Italian, +10.8 WER over dense multi; farthest here by the mean "
            f"Jaccard of the LTH-70 masks: {farthest}): **{verdict}**", *lines]


def write_heatmaps(out_dir, report_dir, languages, dynamic_run):
    """Jaccard heatmaps of the LTH-70 masks and of a dynamic run's final masks."""
    from speechbrain_sparse.masks import ParameterMask
    from speechbrain_sparse.pruning.pathways import PathwayMasks

    written = {}
    paths = {x: Path(out_dir) / f"lth_{x}" / "masks" / "s0.7.pt" for x in languages}
    if all(path.is_file() for path in paths.values()):
        masks = PathwayMasks({x: ParameterMask.load(p) for x, p in paths.items()})
        path = Path(report_dir) / "jaccard_lth70.png"
        masks.write_jaccard_heatmap(str(path), "LTH-70 language masks (Jaccard)")
        written["LTH-70 masks"] = path.name
    folder = Path(out_dir) / dynamic_run / "pathways"
    if (folder / "pathways.json").is_file():
        path = Path(report_dir) / "jaccard_dynamic.png"
        PathwayMasks.load(folder).write_jaccard_heatmap(
            str(path), f"{dynamic_run}: final pathways (Jaccard)")
        written[f"{dynamic_run} final masks"] = path.name
    return written


def write_report(out_dir, results, languages, bilingual, header="", timings=""):
    """Writes ``report/table{1,2,3}.{md,csv}``, heatmaps and ``report.md``."""
    report = Path(out_dir) / "report"
    report.mkdir(parents=True, exist_ok=True)
    parts = [header]
    specs = (("table1", table1(languages), languages, TABLE1_COLUMNS,
              "Table 1: pruning the dense multilingual model, test WER (%) per "
              "language, CER (%) alongside"),
             ("table2", table2(bilingual), bilingual, TABLE2_COLUMNS,
              f"Table 2: language pathways on {' + '.join(bilingual)}"),
             ("table3", table3(languages), languages, TABLE2_COLUMNS,
              f"Table 3: language pathways on {' + '.join(languages)}"))
    for stem, spec, langs, columns, title in specs:
        rows = table_rows(results, spec, langs, columns)
        parts.append(write_table(rows, columns + score_columns(langs),
                                 str(report / stem), f"## {title}"))
    judge = Judge(out_dir)
    claims = [*claim_adaptive(judge, languages), *claim_dynamic_best(judge, bilingual),
              *claim_lap(judge, languages, mask_distances(out_dir, languages))]
    parts.append("## The paper's claims here\n\nPaired bootstrap over the test "
                 f"utterances ({RESAMPLES} resamples, one stratum per language; Δ = "
                 "second system - first): **holds** when the 95 % interval excludes 0 "
                 "in the claimed direction, **does not hold** when it excludes 0 the "
                 "other way, **not resolved** when it contains 0.\n\n"
                 + "\n".join(claims) + "\n")
    heatmaps = write_heatmaps(out_dir, report, languages,
                              pathway_run_name("dynamic", "lth", 0.5, languages))
    if heatmaps:
        parts.append("## Language masks\n\n" + "\n".join(
            f"![{label}]({name})" for label, name in heatmaps.items()) + "\n")
    if timings:
        parts.append(timings)
    text = "\n".join(parts)
    (report / "report.md").write_text(text, encoding="utf-8")
    return text
