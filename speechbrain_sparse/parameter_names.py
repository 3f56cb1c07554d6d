"""Parameter names that do not depend on how the model is wrapped, and their layers.

DDP (``module.``) and ``torch.compile`` (``_orig_mod.``) add components to the
names ``named_parameters()`` gives; :func:`canonical_parameter_name` removes
them, so masks, scores and the training mixin key their tensors by names that
are the same on every process layout. :func:`layer_of` groups names into layers
for per-layer statistics.

Example
-------
>>> import torch
>>> wrapped = torch.nn.Sequential(torch.nn.Linear(2, 2))
>>> list(canonical_named_parameters(wrapped))
['0.weight', '0.bias']
>>> canonical_parameter_name("module.0.weight")
'0.weight'
"""

WRAPPER_COMPONENTS = ("module", "_orig_mod")
LAYER_CONTAINERS = ("layer", "layers", "block", "blocks")


def canonical_parameter_name(name):
    """Returns ``name`` without DDP (``module``) / torch.compile (``_orig_mod``) parts.

    The one place where wrapper prefixes are stripped; every mask, score and the
    training mixin key their tensors by this name. Components are dropped wherever
    they occur, since SpeechBrain wraps each entry of ``Brain.modules`` separately
    (``model.module.encoder...``). A genuine sub-module attribute called ``module``
    is dropped too, which is harmless unless it collides with another name;
    :func:`canonical_named_parameters` raises on such a collision.

    Arguments
    ---------
    name : str
        A name as given by ``named_parameters()`` or a ``state_dict``.

    Returns
    -------
    str
        The name in the unwrapped model.

    Example
    -------
    >>> canonical_parameter_name("module._orig_mod.encoder.layers.0.w.weight")
    'encoder.layers.0.w.weight'
    >>> canonical_parameter_name("model.module.ctc_lin.w.bias")
    'model.ctc_lin.w.bias'
    """
    parts = [part for part in name.split(".") if part not in WRAPPER_COMPONENTS]
    return ".".join(parts)


def canonical_named_parameters(model):
    """Returns ``{canonical name: parameter}`` of ``model`` in definition order.

    Arguments
    ---------
    model : torch.nn.Module
        The (possibly DDP-wrapped or compiled) model.

    Returns
    -------
    dict
        Canonical name -> ``torch.nn.Parameter``.

    Example
    -------
    >>> import torch
    >>> list(canonical_named_parameters(torch.nn.Linear(2, 2)))
    ['weight', 'bias']
    """
    params = {}
    for name, param in model.named_parameters():
        canonical = canonical_parameter_name(name)
        if canonical in params and params[canonical] is not param:
            raise ValueError(f"two parameters share the canonical name '{canonical}'")
        params[canonical] = param
    return params


def layer_of(name):
    """Returns the layer a parameter belongs to, for per-layer statistics.

    The layer is the name up to the last index inside a ``layers`` / ``blocks``
    container (``encoder.layers.3``); other parameters are grouped by their
    top-level module (``ctc_lin``).

    Arguments
    ---------
    name : str
        Canonical parameter name.

    Returns
    -------
    str
        The layer name.

    Example
    -------
    >>> layer_of("layers.1.encoder.layers.3.pos_ffn.ffn.0.weight")
    'layers.1.encoder.layers.3'
    >>> layer_of("ctc_lin.w.weight"), layer_of("weight")
    ('ctc_lin', '(top)')
    """
    parts = name.split(".")
    cut = None
    for i in range(1, len(parts) - 1):
        if parts[i].isdigit() and parts[i - 1].rsplit("_", 1)[-1] in LAYER_CONTAINERS:
            cut = i
    if cut is not None:
        return ".".join(parts[: cut + 1])
    return parts[0] if len(parts) > 1 else "(top)"
