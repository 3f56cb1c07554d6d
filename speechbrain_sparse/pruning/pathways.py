"""Language pathways: one parameter mask per language over one multilingual model.

Dynamic ASR Pathways prunes a dense multilingual model into one subnetwork
(*pathway*) ``m_z`` per language ``z``. Language ``z`` trains ``m_z`` (fixed
pathways) or ``m_z`` plus its *free zone* ``1 - U_{l != z} m_l``, the entries
no other language uses (dynamic pathways), so newly trained weights can later
be shared. :class:`PathwayMasks` holds the masks, named by language, and gives
the free zones, the active set of each language, the overlap statistics and a
per-language-pair Jaccard heatmap; it is saved as a folder of the project's
checksummed mask files plus an index. :func:`lap_init` starts every language
from one multilingual mask (LAP). Training on top of it:
:class:`speechbrain_sparse.pathway_training.PathwayTrainingMixin`.

Example
-------
>>> w = {"fr": [1, 1, 0, 0], "nl": [0, 1, 1, 0]}
>>> pathways = PathwayMasks({k: ParameterMask({"w": torch.tensor(v).bool()})
...                          for k, v in w.items()})
>>> pathways.free_zone("fr")["w"].tolist()
[True, False, False, True]
>>> pathways.active("fr", dynamic=True)["w"].tolist()
[True, True, False, True]
>>> pathways.overlap()["shared_by_all"], pathways.overlap()["exclusive"]
(1, {'fr': 1, 'nl': 1})

Authors
 * speechbrain_sparse contributors 2026
"""

import re
from collections.abc import Mapping
from pathlib import Path

import torch

from speechbrain_sparse.errors import MissingInputError, UserInputError
from speechbrain_sparse.fileio import atomic_folder, read_json, write_json_atomic
from speechbrain_sparse.masks import ParameterMask
from speechbrain_sparse.parameter_names import canonical_named_parameters
from speechbrain_sparse.topk import count_for_density, select_topk

INDEX_FILE = "pathways.json"
INDEX_FORMAT = "speechbrain_sparse.PathwayMasks"
INDEX_VERSION = 1
_LANGUAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class UnknownLanguageError(UserInputError, KeyError):
    """A language the pathways have no mask for (a ``KeyError`` too)."""

    def __str__(self):
        return str(self.args[0])


class PathwayMasks(Mapping):
    """``{language: ParameterMask}``: one pathway per language, same shapes.

    Arguments
    ---------
    masks : Mapping[str, ParameterMask]
        One mask per language; names are short codes such as ``fr`` or
        ``pt-br`` (they become file names). All masks cover the same
        parameters with the same shapes. A mask with a ``target_density``
        must select exactly ``round(target_density * N)`` entries.

    Example
    -------
    >>> a = ParameterMask({"w": torch.tensor([True, False])})
    >>> PathwayMasks({"en": a}).languages
    ['en']
    >>> try:
    ...     PathwayMasks({"en": a})["de"]
    ... except UserInputError as error:
    ...     print(error)
    unknown language 'de'; the pathways have: en
    """

    def __init__(self, masks):
        if not masks:
            raise UserInputError("PathwayMasks: no language masks given")
        self._masks = {}
        first = None
        for language, mask in masks.items():
            if not isinstance(language, str) or not _LANGUAGE.match(language):
                raise UserInputError(f"PathwayMasks: bad language name {language!r}")
            if not isinstance(mask, ParameterMask):
                raise TypeError(f"mask of {language!r} must be a ParameterMask")
            if first is not None:
                try:
                    masks[first]._check_compatible(mask)
                except UserInputError as error:
                    raise UserInputError(
                        f"pathway masks of {first!r} and {language!r} differ: {error}"
                    ) from None
            _check_level(language, mask)
            first = first or language
            self._masks[language] = mask

    # Mapping protocol -----------------------------------------------------------
    def __getitem__(self, language):
        if language not in self._masks:
            known = ", ".join(self._masks)
            raise UnknownLanguageError(
                f"unknown language {language!r}; the pathways have: {known}")
        return self._masks[language]

    def __iter__(self):
        return iter(self._masks)

    def __len__(self):
        return len(self._masks)

    def __contains__(self, language):
        return language in self._masks

    @property
    def languages(self):
        """The languages, in the order given."""
        return list(self._masks)

    @property
    def shapes(self):
        """``{parameter name: shape}`` shared by all masks."""
        return next(iter(self._masks.values())).shapes

    def __repr__(self):
        dens = ", ".join(f"{k}={m.density():.4f}" for k, m in self._masks.items())
        return f"PathwayMasks({dens})"

    # Construction ----------------------------------------------------------------
    @classmethod
    def from_scores(cls, scores, density, coverage=None):
        """Exact global top-K of each language's scores (:func:`select_topk`).

        Arguments
        ---------
        scores : Mapping[str, dict]
            ``{language: {parameter name: score tensor}}``.
        density : float or Mapping[str, float]
            Each language's density (its pathway keeps ``round(d * N)``).
        coverage : Coverage, optional
            Recorded in the masks.

        Returns
        -------
        PathwayMasks

        Example
        -------
        >>> scores = {"fr": {"w": torch.arange(10.0)}, "nl": {"w": -torch.arange(10.0)}}
        >>> p = PathwayMasks.from_scores(scores, {"fr": 0.3, "nl": 0.5})
        >>> p["fr"].num_selected(), p["nl"].num_selected()
        (3, 5)
        """
        levels = density if isinstance(density, Mapping) else dict.fromkeys(scores,
                                                                            density)
        missing = sorted(set(scores) - set(levels))
        if missing:
            raise UserInputError(f"from_scores: no density for languages {missing}")
        return cls({x: select_topk(score, levels[x], coverage=coverage,
                                   method="pathway", options={"language": x})
                    for x, score in scores.items()})

    def replace(self, language, mask):
        """Returns a copy with ``language``'s mask replaced (e.g. after a re-rank)."""
        self[language]  # noqa: B018 -- raises UnknownLanguageError
        return PathwayMasks({**self._masks, language: mask})

    # Set algebra -----------------------------------------------------------------
    def union(self, languages=None):
        """Entries some of ``languages`` (default: all) use."""
        languages = self.languages if languages is None else list(languages)
        out = ParameterMask.full(self.shapes, value=False)
        for language in languages:
            out = out | self[language]
        return out

    def free_zone(self, language):
        """``1 - U_{l != language} m_l``: entries no other language uses."""
        self[language]  # noqa: B018 -- raises UnknownLanguageError
        others = [x for x in self.languages if x != language]
        zone = ~self.union(others)
        zone.method, zone.options = "free_zone", {"language": language}
        return zone

    def active(self, language, dynamic=False):
        """What ``language`` trains: ``m_z`` (fixed) or ``m_z | free_zone(z)``."""
        if not dynamic:
            return self[language]
        return self[language] | self.free_zone(language)

    def unused(self):
        """Entries in no pathway (dynamic training lets every language claim them)."""
        return ~self.union()

    @torch.no_grad()
    def zero_unused(self, module):
        """Sets entries in no pathway to exactly 0 in ``module``'s parameters.

        An entry one language dropped but another keeps is left as it is.
        """
        params = canonical_named_parameters(module)
        for name, unused in self.unused().items():
            params[name].masked_fill_(unused.to(params[name].device), 0.0)

    def check_data_languages(self, languages):
        """Raises unless the pathways' languages equal the data's ``languages``."""
        data = sorted(set(languages))
        absent = [x for x in self.languages if x not in data]
        if absent:
            raise UserInputError(
                f"pathway masks for languages absent from the data: "
                f"{', '.join(absent)} (the data has: {', '.join(data)})")
        for language in data:
            self[language]  # noqa: B018 -- raises UnknownLanguageError

    # Statistics ------------------------------------------------------------------
    def overlap(self):
        """Counts: per-language selected/density, shared by all, exclusive, Jaccard.

        Returns
        -------
        dict
            ``numel``, ``selected`` and ``density`` per language,
            ``shared_by_all`` (entries in every pathway), ``exclusive`` (per
            language: entries in no other pathway), ``in_no_pathway`` and
            ``jaccard`` (``{a: {b: J(a, b)}}``).
        """
        languages = self.languages
        shared = self[languages[0]]
        for language in languages[1:]:
            shared = shared & self[language]
        return {
            "numel": shared.numel(),
            "selected": {x: self[x].num_selected() for x in languages},
            "density": {x: self[x].density() for x in languages},
            "shared_by_all": shared.num_selected(),
            "exclusive": {x: (self[x] & self.free_zone(x)).num_selected()
                          for x in languages},
            "in_no_pathway": self.unused().num_selected(),
            "jaccard": {a: {b: self[a].jaccard(self[b]) for b in languages}
                        for a in languages},
        }

    def write_jaccard_heatmap(self, path, title="pathway overlap (Jaccard)"):
        """Writes the language x language Jaccard heatmap PNG; returns the matrix."""
        from speechbrain_sparse.mask_plots import write_pair_heatmap

        jaccard = self.overlap()["jaccard"]
        matrix = [[jaccard[a][b] for b in self.languages] for a in self.languages]
        write_pair_heatmap(self.languages, matrix, path, title=title)
        return matrix

    # Files -----------------------------------------------------------------------
    def save(self, folder):
        """Writes ``<language>.mask`` files and ``pathways.json``, atomically.

        The folder appears complete or not at all (:func:`atomic_folder`).
        """
        with atomic_folder(folder) as staging:
            entries = []
            for language, mask in self._masks.items():
                mask.save(staging / f"{language}.mask")
                entries.append({"language": language, "file": f"{language}.mask",
                                "selected": mask.num_selected(),
                                "density": mask.density()})
            write_json_atomic(staging / INDEX_FILE, {
                "format": INDEX_FORMAT, "version": INDEX_VERSION,
                "languages": entries, "numel": self[self.languages[0]].numel(),
            })

    @classmethod
    def load(cls, folder, model=None):
        """Reads a folder written by :meth:`save`; checks it against ``model``."""
        index_path = Path(folder) / INDEX_FILE
        index = read_json(index_path)
        if index is None:
            raise MissingInputError(f"{index_path}: pathway index not found")
        version = index.get("version", INDEX_VERSION + 1)
        if index.get("format") != INDEX_FORMAT or version > INDEX_VERSION:
            raise UserInputError(f"{index_path}: not a pathway index of version "
                                 f"<= {INDEX_VERSION}")
        masks = {}
        for entry in index["languages"]:
            path = Path(folder) / entry["file"]
            mask = ParameterMask.load(path, model=model)
            if mask.num_selected() != entry["selected"]:
                raise UserInputError(f"{path}: {mask.num_selected()} entries selected, "
                                     f"the index says {entry['selected']}")
            masks[entry["language"]] = mask
        return cls(masks)


def lap_init(mask, languages):
    """LAP: every language starts from the same multilingual ``mask``.

    Example
    -------
    >>> m = ParameterMask({"w": torch.tensor([True, False])})
    >>> p = lap_init(m, ["en", "fr"])
    >>> p["en"] == p["fr"], p["en"] is p["fr"]
    (True, False)
    """
    if not languages:
        raise UserInputError("lap_init: no languages given")
    return PathwayMasks({
        language: ParameterMask({n: t.clone() for n, t in mask.items()}, mask.coverage,
                                "lap", {"language": language, "from": mask.describe()},
                                mask.target_density)
        for language in languages
    })


def _check_level(language, mask):
    """A mask with a target density must select exactly round(d * N) entries."""
    if mask.target_density is None or not 0 < mask.target_density <= 1:
        return
    expected = count_for_density(mask.target_density, mask.numel())
    if mask.num_selected() != expected:
        raise UserInputError(
            f"pathway {language!r}: {mask.num_selected()} entries selected, but its "
            f"level {mask.target_density} of {mask.numel()} needs exactly {expected}")
