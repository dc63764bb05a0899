"""The decoding protocol of the generating models (course chapter 4, seed 000 "Decoding with beam search"): ONE
`generate` / `beam` pair for every encoder–decoder (seq2seq, transformer_seq2seq, show_and_tell, show_attend_tell).

A generating model mixes in `Decoder` (before nn.Module) and implements one hook,

    decode_start(inputs, inputs_paddings, max_len) -> (step_fn, state)

run inside the module (its parameters bound): it reads the source (encoder, image) and returns the decoder's state
before BOS, per example (leading dim B), and `step_fn(tokens [N], state) -> (log-probs [N, V], state)`, a pure
function of its arguments (`bound_step_fn` makes one from a module method), so that jaxdl.text.sampling's greedy
decoding and jaxdl.text.beam_search can run it N = B or B·W rows at a time. `max_len` is the resolved decoding limit
(a model with a fixed-size cache checks it there); models without paddings accept and ignore `inputs_paddings`. The
model also has a `max_decode_length` field (the limit when max_length = 0). Then

    generate(inputs, inputs_paddings=None, decoder_inputs=None, *, beam_width=1, max_length=0, length_penalty=0.0)
        -> ids [B, L] int32: y₁ … y_n (EOS kept), PAD after; greedy at beam_width 1, else the best beam
    beam(inputs, inputs_paddings=None, *, beam_width, max_length=0, length_penalty=0.0, n_best=1)
        -> jaxdl.text.beam_search.BeamSearchResult (the n best; beam search even at width 1)

with GNMT length normalisation α = length_penalty (Wu et al. 2016, eq. 14). `decoder_inputs` (a teacher-forced batch
field) is accepted and ignored, so the trainer's generating evaluation (jaxdl.train.generation) calls
`model.apply(..., method='generate', beam_width=..., max_length=..., length_penalty=..., **batch_keys)` on any of
them; jaxdl.bench drives `decode_start`'s step function directly. Bad options are one-line UserErrors.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import numpy as np

from jaxdl.errors import UserError
from jaxdl.text import beam_search as beam_lib
from jaxdl.text import sampling
from jaxdl.text.vocab import BOS, EOS, PAD


def check_decode(beam_width, max_length, length_penalty) -> None:
  """The decoding options (config.decode), or a UserError naming the bad one."""
  if not (isinstance(beam_width, (int, np.integer)) and not isinstance(beam_width, bool) and beam_width >= 1):
    raise UserError(f'beam width {beam_width!r}', 'an integer >= 1 (1: greedy decoding)',
                    'fix config.decode.beam_width')
  if not (isinstance(max_length, (int, np.integer)) and max_length >= 0):
    raise UserError(f'decode max_length {max_length!r}', 'an integer >= 0 (0: the model\'s max_decode_length)',
                    'fix config.decode.max_length')
  if not length_penalty >= 0:
    raise UserError(f'length penalty {length_penalty!r}', 'a number >= 0', 'fix config.decode.length_penalty')


def bound_step_fn(module: nn.Module, method) -> Any:
  """`module.method(tokens, state)` over the module's parameters, bound now: a step function for `decode_start`
  (called inside the module, under the caller's jit)."""
  params = module.variables['params']
  model = module.clone(parent=None)
  return lambda tok, st: model.apply({'params': params}, tok, st, method=method)


def _start(model, inputs, inputs_paddings, beam_width, max_length, length_penalty):
  """Checks the options, resolves the limit, runs the model's hook: (step_fn, state, the searches' keywords)."""
  check_decode(beam_width, max_length, length_penalty)
  max_len = int(max_length or model.max_decode_length)
  step_fn, state = model.decode_start(inputs, inputs_paddings, max_len)
  return step_fn, state, dict(batch_size=inputs.shape[0], max_len=max_len, bos_id=BOS, eos_id=EOS, pad_id=PAD)


def _beam_search(step_fn, state, kw, beam_width: int, length_penalty: float, n_best: int):
  return beam_lib.beam_search(step_fn, beam_lib.tile_beams(state, beam_width), beam_width=beam_width,
                              length_penalty_alpha=float(length_penalty), n_best=n_best, **kw)


class Decoder:
  """`generate` and `beam` from the model's `decode_start` hook (the protocol: module docstring). Mixed in before
  nn.Module; it adds no other attribute to the model."""

  def decode_start(self, inputs, inputs_paddings, max_len: int):
    """(step_fn, state before BOS) after reading `inputs`: each generating model implements it."""
    raise NotImplementedError(f'{type(self).__name__} does not implement decode_start')

  def generate(self, inputs, inputs_paddings=None, decoder_inputs=None, *, beam_width: int = 1, max_length: int = 0,
               length_penalty: float = 0.0):
    """ids [B, L] int32 (EOS kept, PAD after); greedy at beam_width 1. `decoder_inputs` is ignored."""
    del decoder_inputs
    step_fn, state, kw = _start(self, inputs, inputs_paddings, beam_width, max_length, length_penalty)
    if beam_width == 1:
      return sampling.greedy_decode(step_fn, state, **kw).sequences
    return _beam_search(step_fn, state, kw, int(beam_width), length_penalty, 1).sequences[:, 0]

  def beam(self, inputs, inputs_paddings=None, *, beam_width: int, max_length: int = 0, length_penalty: float = 0.0,
           n_best: int = 1):
    """The n-best hypotheses (jaxdl.text.beam_search.BeamSearchResult), beam search even at width 1."""
    step_fn, state, kw = _start(self, inputs, inputs_paddings, beam_width, max_length, length_penalty)
    return _beam_search(step_fn, state, kw, int(beam_width), length_penalty, n_best)
