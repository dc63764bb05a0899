"""Layers shared by the CNN model zoo. Every zoo model builds its convolutions with `jaxdl.layers.Conv`.

`Conv` has exactly flax's `nn.Conv` interface and parameter layout (kernel HWIO, bias), so parameter counts and
checkpoints are those of `nn.Conv`; only the lowering may differ (a faster CPU path, see jaxdl/bench.py `cnn`).
"""
from __future__ import annotations

import flax.linen as nn

# Placeholder: the plain flax convolution. The CPU fast path replaces this definition, keeping the interface.
Conv = nn.Conv
