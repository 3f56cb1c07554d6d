"""An L0 + distillation run from a loaded YAML: prune a frozen teacher's copy.

The teacher is a local Hugging Face wav2vec2 / HuBERT / WavLM folder
(``upstream_dir``); the student starts as its copy, gated and trained on the
audio of ``train_csv`` by
:class:`~speechbrain_sparse.pruning.l0_distillation.L0DistillationBrain` with
the settings of ``l0`` (an
:class:`~speechbrain_sparse.pruning.l0_distillation.L0Distillation` built by the
YAML). Then the closed units are removed and
``<output_folder>/pruned_upstream/`` holds the smaller encoder
(:func:`~speechbrain_sparse.surgery.save_structured`; the probing YAMLs take it
as ``upstream_dir``), ``unit_mask.pt`` its unit mask and ``results.json`` the
report (target and achieved sparsity, parameters removed, λ).
"""

import json
import os

import speechbrain as sb

from speechbrain_sparse.asr.data import train_loader_options
from speechbrain_sparse.asr.options import checked_options
from speechbrain_sparse.asr.probing import HuggingFaceUpstream
from speechbrain_sparse.checkpoints import ResumableCheckpointer
from speechbrain_sparse.fileio import read_audio_checked
from speechbrain_sparse.fileio.writing import write_text_atomic
from speechbrain_sparse.pruning.l0_distillation import L0DistillationBrain
from speechbrain_sparse.surgery import save_structured

#: The keys of an L0 YAML this module reads (besides the library's).
L0_KEYS = ("upstream_dir", "l0")


def audio_dataset(csv_path, hparams, sort=None):
    """A dataset of ``sig`` only (distillation needs no labels)."""
    dataset = sb.dataio.dataset.DynamicItemDataset.from_csv(csv_path=str(csv_path))
    if sort or hparams["max_duration"]:
        dataset = dataset.filtered_sorted(
            sort_key="duration" if sort else None, reverse=sort == "descending",
            key_max_value={"duration": hparams["max_duration"] or float("inf")})

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def pipeline(wav):
        return read_audio_checked(wav)

    dataset.add_dynamic_item(pipeline)
    dataset.set_output_keys(["id", "sig"])
    return dataset


def run_l0_experiment(hparams, run_opts):
    """Trains the gated student, removes its closed units, saves it.

    Returns
    -------
    dict
        The report (also ``<output_folder>/results.json``).
    """
    hparams = checked_options(hparams)
    teacher = HuggingFaceUpstream.from_pretrained(hparams["upstream_dir"])
    student = HuggingFaceUpstream.from_pretrained(hparams["upstream_dir"]).unfreeze()
    l0 = hparams["l0"]
    l0.prepare(student)
    sort = hparams["sorting"] if hparams["sorting"] in ("ascending",
                                                        "descending") else None
    train = audio_dataset(hparams["train_csv"], hparams, sort)
    valid = audio_dataset(hparams["valid_csv"], hparams, "descending")
    counter = hparams["epoch_counter"]
    recoverables = {"student": student, "l0": l0, "counter": counter}
    if hparams["lr_annealing"] is not None:
        recoverables["lr_annealing"] = hparams["lr_annealing"]
    checkpointer = ResumableCheckpointer(hparams["save_folder"],
                                         recoverables=recoverables)
    brain = L0DistillationBrain(
        modules={"student": student, "teacher": teacher, "l0": l0},
        opt_class=hparams["opt_class"], hparams=hparams, run_opts=run_opts,
        checkpointer=checkpointer)
    brain.fit(counter, train, valid,
              train_loader_kwargs=train_loader_options(hparams, train),
              valid_loader_kwargs=hparams["valid_dataloader_opts"])
    report = l0.finish(student)
    if sb.utils.distributed.if_main_process():
        folder = hparams["output_folder"]
        l0.pruned_mask.save(os.path.join(folder, "unit_mask.pt"))
        save_structured(student.model, os.path.join(folder, "pruned_upstream"),
                        source=hparams["upstream_dir"], info=report)
        write_text_atomic(os.path.join(folder, "results.json"),
                          json.dumps(report, indent=2))
    return report
