"""The Transformer ASR pipeline shared by every recipe folder.

``data`` turns manifests into SpeechBrain datasets, ``brain`` trains and decodes
the joint CTC/attention Transformer, ``model_folder`` exports and loads the
trained model that later stages (fine-tuning, masks, pruning) start from.
"""
