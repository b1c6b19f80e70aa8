"""Networks and fixed transforms the priors run at inference time, with their loaders.

Nothing here imports ``audiosds.training``: training scripts import these modules, never the reverse.
"""
