"""The keys of a stage YAML, read and checked in one place.

A recipe loads its YAML with :func:`load_stage_hparams`. It

* applies the command-line overrides (an override that names no key of the
  file is an error naming it and the nearest key, :func:`load_yaml`);
* refuses a top-level key that nothing uses: not read by the library
  (:data:`LIBRARY_KEYS`), not read by the recipe (its ``recipe_keys``) and not
  referenced (``<key>``) by another key of the file — so a misspelled key
  (``valid_serach_every: 5``) is an error naming it, not a silent default;
* fills in the optional keys the file does not set (:data:`OPTIONAL`) and
  checks their values.

Every other module reads these keys as plain ``hparams[key]``: the defaults
live here and nowhere else.

Example
-------
>>> options = checked_options({"decoding": "ctc_greedy"})
>>> options["decoding"], options["valid_search_every"], options["mask_mode"]
('ctc_greedy', 1, 'freeze')
>>> checked_options({"decoding": "greedy"})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
speechbrain_sparse.asr.options.ConfigError: decoding: must be one of ... not 'greedy'
"""

import ast
import difflib
import re
from pathlib import Path

import ruamel.yaml
from hyperpyyaml import load_hyperpyyaml

from speechbrain_sparse.errors import UserInputError


class ConfigError(UserInputError):
    """A stage YAML key that is unknown or has a bad value; the message names it."""


def _one_of(*choices):
    def check(value):
        if value not in choices:
            return f"must be one of {', '.join(map(str, choices))}, not {value!r}"
        return None
    return check


def _number(minimum=None, integer=False, optional=False):
    def check(value):
        if value is None and optional:
            return None
        kind = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"must be {'an integer' if integer else 'a number'}, not {value!r}"
        if minimum is not None and value < minimum:
            return f"must be >= {minimum}, not {value!r}"
        return None
    return check


def _boolean(value):
    return None if isinstance(value, bool) else f"must be True or False, not {value!r}"


def _anything(value):
    return None


SORTINGS = ("ascending", "descending", "random", "bucketed")

#: Optional keys: name -> (default, check returning an error text or None).
OPTIONAL = {
    "seed": (0, _number(integer=True)),
    "stage": (None, _anything),
    "method": (None, _anything),
    "size": (None, _anything),
    "dialect": (None, _anything),
    # bos_index None: a CTC-only model (no decoder)
    "bos_index": (None, _number(minimum=0, integer=True, optional=True)),
    "eos_index": (None, _number(minimum=0, integer=True, optional=True)),
    "decoding": ("beam", _one_of("beam", "ctc_greedy")),
    "valid_search_every": (1, _number(minimum=0, integer=True)),  # 0: never
    "syllable_error_rate": (False, _boolean),
    # applied to references and hypotheses alike before WER / CER (a function)
    "normalize_text": (None, _anything),
    "keep_checkpoints": (2, _number(minimum=1, integer=True)),
    "sorting": ("ascending", _one_of(*SORTINGS)),
    "max_duration": (None, _number(minimum=0, optional=True)),
    "max_batch_duration": (None, _number(minimum=0, optional=True)),
    "num_buckets": (10, _number(minimum=1, integer=True)),
    "feature_cache_folder": (None, _anything),
    # manifests (a list, or name -> path) whose text the tokenizer learns too
    "tokenizer_extra_csvs": (None, _anything),
    "lr_annealing": (None, _anything),
    "brain_class": (None, _anything),
    "mask_strategy": (None, _anything),
    "mask_mode": ("freeze", _one_of("freeze", "prune")),
    "l1_weight": (0.0, _number(minimum=0)),
    "adapter_projection_size": (None, _number(minimum=1, integer=True, optional=True)),
    # SparseWAV (asr/pruning_stage.py): objects built by the YAML
    "prune_sparsities": (None, _anything),
    "pruner": (None, _anything),
    "calibration": (None, _anything),
    "finetune_max_utterances": (None, _number(minimum=1, integer=True, optional=True)),
    "sparse_export": (False, _boolean),
    # a stage that starts from a model folder (see asr/model_folder.py)
    "pretrained_dir": (None, _anything),
    # Hugging Face CTC models (asr/ctc_experiment.py): a folder or a config
    "hf_config": (None, _anything),
    "normalize_audio": (True, _boolean),
}

#: Keys the library reads (required by some stage, or optional above).
LIBRARY_KEYS = frozenset({
    *OPTIONAL,
    # data and tokenizer (asr/data.py, asr/experiment.py)
    "train_csv", "valid_csv", "test_csvs", "vocab_size", "token_type", "bos_index",
    "eos_index", "pad_index", "blank_index", "compute_features",
    "train_dataloader_opts", "valid_dataloader_opts", "test_dataloader_opts",
    # the model folder of an earlier stage (asr/model_folder.py)
    "pretrained_dir", "pretrainer", "tokenizer",
    # the Brain (asr/brain.py) and SpeechBrain's own run options
    "modules", "model", "normalize", "opt_class", "checkpointer", "epoch_counter",
    "train_logger", "log_softmax", "ctc_cost", "seq_cost", "ctc_weight",
    "valid_search", "test_search", "max_grad_norm", "grad_accumulation_factor",
    "ckpt_interval_minutes", "precision", "noprogressbar",
    # where things are written
    "output_folder", "save_folder", "model_export_dir",
    # Hugging Face CTC models (asr/ctc_experiment.py)
    "hf_config", "normalize_audio", "family",
})

REFERENCE = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)")


def checked_options(hparams):
    """``hparams`` with every optional key present and every value checked.

    Arguments
    ---------
    hparams : dict
        A loaded stage YAML.

    Returns
    -------
    dict
        A new dict: the YAML's keys and the defaults of those it leaves out.

    Raises
    ------
    ConfigError
        A value out of range, naming the key.
    """
    options = dict(hparams)
    for key, (default, check) in OPTIONAL.items():
        options.setdefault(key, default)
        problem = check(options[key])
        if problem:
            raise ConfigError(f"{key}: {problem}")
    return options


def unused_keys(yaml_text, hparams, recipe_keys=()):
    """Top-level keys that nothing reads or references, in file order.

    Example
    -------
    >>> text = "lr: 0.1\\nopt: !name:torch.optim.SGD\\n    lr: !ref <lr>\\nlrr: 2\\n"
    >>> unused_keys(text, {"lr": 0.1, "opt": None, "lrr": 2}, recipe_keys={"opt"})
    ['lrr']
    """
    referenced = set(REFERENCE.findall(yaml_text))
    known = LIBRARY_KEYS | set(recipe_keys) | referenced
    return [key for key in hparams if not key.startswith("__") and key not in known]


def load_yaml(hparams_file, overrides=None):
    """Loads a YAML with hyperpyyaml; what the user mistyped raises ConfigError.

    An override that names no key of the file (``--densty``) and YAML that does
    not parse (in the file or an override) are errors naming the file and the
    key; any other error (a constructor that fails) keeps its traceback.

    Arguments
    ---------
    hparams_file : str or Path
        The YAML.
    overrides : str or dict, optional
        Command-line overrides (``sb.parse_arguments``' third value).

    Returns
    -------
    dict
        What ``load_hyperpyyaml`` returns.

    Raises
    ------
    ConfigError
        ``<file>: --<key>: no such key in the file (did you mean --<key>?)``.

    Example
    -------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "stage.yaml"
    >>> _ = path.write_text("density: 0.1\\nseed: 1\\n")
    >>> load_yaml(path, {"seed": 2})
    {'density': 0.1, 'seed': 2}
    >>> try:
    ...     load_yaml(path, "densty: 0.2")
    ... except ConfigError as error:
    ...     print(str(error).replace(str(path), "stage.yaml"))
    stage.yaml: --densty: no such key in the file (did you mean --density?)
    """
    path = Path(hparams_file)
    try:
        with open(path, encoding="utf-8") as handle:
            return load_hyperpyyaml(handle, overrides)
    except KeyError as error:
        found = UNKNOWN_OVERRIDE.fullmatch(str(error.args[0]) if error.args else "")
        if found is None:
            raise
        key, keys = found.group(1), ast.literal_eval(found.group(2))
        raise ConfigError(f"{path}: --{key}: {_unknown_override(key, keys)}") from None
    except ruamel.yaml.YAMLError as error:
        raise ConfigError(f"{path} (or an override): not valid YAML: "
                          f"{_yaml_problem(error)}") from None


UNKNOWN_OVERRIDE = re.compile(r"Override '(.+)' not found in: (\[.*\])", re.DOTALL)


def _yaml_problem(error):
    """A YAML parser error in one line: what is wrong and the line it is on."""
    words = [getattr(error, name, None) for name in ("context", "problem")]
    text = ", ".join(word for word in words if word) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    buffer = getattr(mark, "buffer", None)
    lines = buffer.replace("\0", "").splitlines() if isinstance(buffer, str) else []
    if mark is not None and mark.line < len(lines):
        text += f", in: {lines[mark.line].strip()}"
    return text


def _unknown_override(key, keys):
    """Why ``--key`` cannot be overridden, with the nearest key of the file."""
    if key in OPTIONAL:
        return (f"an optional key that the file does not set (default "
                f"{OPTIONAL[key][0]!r}); add '{key}: ...' to the file to change it")
    close = difflib.get_close_matches(key, keys, n=1)
    hint = f" (did you mean --{close[0]}?)" if close else ""
    return f"no such key in the file{hint}"


def load_stage_hparams(hparams_file, overrides=None, recipe_keys=()):
    """Loads a stage YAML, refuses unused keys, fills and checks the optional ones.

    Arguments
    ---------
    hparams_file : str or Path
        The stage YAML.
    overrides : str or dict, optional
        Command-line overrides (``sb.parse_arguments``' third value).
    recipe_keys : iterable of str
        The keys the recipe's own code reads (data preparation, ...).

    Returns
    -------
    dict
        The checked hparams (see :func:`checked_options`).

    Raises
    ------
    ConfigError
        An unused (unknown or misspelled) key, an override of no key of the
        file or a bad value, naming the file and the key.
    """
    path = Path(hparams_file)
    text = path.read_text(encoding="utf-8")
    hparams = load_yaml(path, overrides)
    unused = unused_keys(text, hparams, recipe_keys)
    if unused:
        raise ConfigError(
            f"{path}: unknown key{'s' if len(unused) > 1 else ''} "
            f"{', '.join(repr(key) for key in unused)}: neither read by the recipe "
            "nor referenced in the file (misspelled?)")
    try:
        return checked_options(hparams)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
