"""What the recipe tests assert after a masked fine-tuning stage, and a tiny model."""

import torch

#: Overrides that shrink any Transformer stage YAML to a width-32 model.
TINY_MODEL = [
    "--d_model=32",
    "--nhead=2",
    "--d_ffn=64",
    "--num_encoder_layers=1",
    "--num_decoder_layers=1",
    "--test_beam_size=2",
]


def assert_only_the_mask_trained(pretrained_folder, finetuned_folder, mask):
    """Entries outside ``mask`` and the feature normaliser stay bit-identical.

    Arguments
    ---------
    pretrained_folder, finetuned_folder : pathlib.Path
        Model folders (``model.ckpt``, ``normalizer.ckpt``).
    mask : speechbrain_sparse.masks.ParameterMask
        The mask of the fine-tuning stage.
    """
    before = torch.load(pretrained_folder / "model.ckpt")
    after = torch.load(finetuned_folder / "model.ckpt")
    changed = 0
    for name, trainable in mask.items():
        assert torch.equal(after[name][~trainable], before[name][~trainable]), name
        changed += int((after[name][trainable] != before[name][trainable]).sum())
    assert changed > 0
    normalizer_before = torch.load(pretrained_folder / "normalizer.ckpt")
    normalizer_after = torch.load(finetuned_folder / "normalizer.ckpt")
    assert normalizer_before.keys() == normalizer_after.keys()
    for key, value in normalizer_before.items():
        if torch.is_tensor(value):
            assert torch.equal(value, normalizer_after[key]), key
        else:
            assert value == normalizer_after[key], key
