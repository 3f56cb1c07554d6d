"""Fig. 1 of the task-agnostic structured pruning paper: the hard-concrete gate.

Pure math, no training: (a) histograms of ``s̄`` and ``z = hardtanh(s̄)`` for a
few ``log α`` (``z`` has point masses at exactly 0 and 1); (b) ``E[z]`` and
``E[s̄]`` against ``log α``, each averaged over the same 500 draws of ``u``,
with the ``log α`` where the averaged ``s̄`` lies outside ``(0, 1)`` shaded: the clip
saturates and ``∂z/∂s̄ = 0`` for most draws, so the plain estimator stops
updating ``log α`` (the paper's argument for the STE). The fraction of draws
with ``∂z/∂s̄ = 0`` is drawn as well.

Authors
 * speechbrain_sparse contributors 2026

Example
-------
>>> curves = hard_concrete_curves(log_alphas=[-4.0, 0.0, 4.0], samples=500)
>>> [round(v, 1) for v in curves["mean_z"]]
[0.0, 0.5, 1.0]
"""

import torch

from speechbrain_sparse.fileio.writing import atomic_write
from speechbrain_sparse.pruning.hard_concrete import hardtanh01, sample_stretched


def hard_concrete_curves(log_alphas=None, samples=500, beta=2 / 3, gamma=-0.1,
                         zeta=1.1, noise_form="louizos", seed=0):
    """``E[z]``, ``E[s̄]`` and the clipped fraction per ``log α`` (Fig. 1b data).

    Returns
    -------
    dict
        ``log_alpha``, ``mean_z``, ``mean_s_bar``, ``zero_gradient`` (fraction
        of draws with ``s̄ ∉ (0, 1)``) and ``shaded`` (mean ``s̄ ∉ (0, 1)``),
        each a list over ``log_alphas`` (default: -6 to 6 in steps of 0.1).
    """
    if log_alphas is None:
        log_alphas = torch.linspace(-6.0, 6.0, 121, dtype=torch.float64)
    log_alpha = torch.as_tensor(log_alphas, dtype=torch.float64)
    # The same 500 draws of u at every log α (common random numbers: smooth curves).
    stretched = torch.stack([
        sample_stretched(value.expand(samples), beta, gamma, zeta, noise_form,
                         torch.Generator().manual_seed(seed))
        for value in log_alpha])
    z = hardtanh01(stretched, ste=False)
    mean_s_bar = stretched.mean(1)
    return {
        "log_alpha": log_alpha.tolist(),
        "mean_z": z.mean(1).tolist(),
        "mean_s_bar": mean_s_bar.tolist(),
        "zero_gradient": ((stretched <= 0) | (stretched >= 1)).double().mean(1)
        .tolist(),
        "shaded": ((mean_s_bar <= 0) | (mean_s_bar >= 1)).tolist(),
    }


def _shade(axis, xs, flags):
    """Shades each run of consecutive ``xs`` where ``flags`` is True."""
    start = None
    for i, flag in enumerate(flags):
        if flag and start is None:
            start = i
        if start is not None and (not flag or i == len(flags) - 1):
            axis.axvspan(xs[start], xs[i if flag else i - 1], color="0.85", lw=0)
            start = None


def hard_concrete_figure(path, hist_log_alphas=(-2.0, 0.0, 2.0), hist_samples=20000,
                         samples=500, beta=2 / 3, gamma=-0.1, zeta=1.1,
                         noise_form="louizos", seed=0):
    """Draws Fig. 1a and 1b side by side to ``path`` (PNG, written atomically).

    Returns
    -------
    dict
        The Fig. 1b curves (:func:`hard_concrete_curves`).

    Example
    -------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "fig1.png"
    >>> curves = hard_concrete_figure(path, hist_samples=2000)
    >>> path.read_bytes()[:4] == b"\\x89PNG", any(curves["shaded"])
    (True, True)
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    generator = torch.Generator().manual_seed(seed)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10.0, 3.8))
    bins = torch.linspace(gamma, zeta, 61).tolist()
    for i, value in enumerate(hist_log_alphas):
        log_alpha = torch.full((hist_samples,), float(value), dtype=torch.float64)
        stretched = sample_stretched(log_alpha, beta, gamma, zeta, noise_form,
                                     generator)
        z = stretched.clamp(0.0, 1.0)
        color = f"C{i}"
        left.hist(stretched.numpy(), bins=bins, density=True, histtype="step",
                  linestyle="--", color=color, label=f"s̄, log α={value:g}")
        left.hist(z.numpy(), bins=bins, density=True, histtype="step", color=color,
                  label=f"z, log α={value:g}")
    left.set_xlabel("value")
    left.set_ylabel("density")
    left.set_title("(a) distribution of z and s̄", fontsize=10)
    left.legend(fontsize=7)
    curves = hard_concrete_curves(None, samples, beta, gamma, zeta, noise_form, seed)
    xs = curves["log_alpha"]
    _shade(right, xs, curves["shaded"])
    right.plot(xs, curves["mean_z"], color="C0", label="E[z]")
    right.plot(xs, curves["mean_s_bar"], color="C1", linestyle="--", label="E[s̄]")
    right.plot(xs, curves["zero_gradient"], color="C2", linestyle=":",
               label="P(∂z/∂s̄ = 0)")
    right.set_xlabel("log α")
    right.set_title(f"(b) means over {samples} samples; shaded: E[s̄] ∉ (0, 1)",
                    fontsize=10)
    right.legend(fontsize=7)
    right.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=120)
    plt.close(figure)
    return curves
