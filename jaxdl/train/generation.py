"""Evaluation that generates (chapters 4-5): decode every eval example, score the text on the host.

With `config.decode.metrics` set (e.g. ('bleu', 'exact_match') for translation, ('cer', 'wer') for speech), every
evaluation also runs the model's `generate` method over the eval split — greedy or beam search on the device,
jit-compiled once per length bucket — turns the output ids into text with the dataset's vocabulary, and compares
it with the references using maintained implementations (sacrebleu's BLEU, jiwer's WER/CER). The scores are
logged with the other eval metrics, so `train.best_metric` and early stopping can use them.

A model that generates has a method

    generate(inputs, *, beam_width, max_length, length_penalty, **batch_keys) -> ids [B, L] int32

(ids after the end are PAD = 0 or follow an EOS: the vocabulary's `decode` stops there). The encoder–decoders
(seq2seq, transformer_seq2seq, the captioners) get it from the decoding protocol, jaxdl.models.decoding.Decoder, by
implementing its one hook `decode_start`; a CTC model decodes its own frames (deepspeech2). A dataset that can be scored
has `dataset.vocabulary` (jaxdl.text.vocab.Vocabulary or anything with `decode(ids) -> str`); references are its
source's `references[i]` strings when it has them (e.g. the untokenised transcript), else the decoded targets.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable

import jax
import numpy as np

from jaxdl import data as data_lib
from jaxdl.errors import UserError
from jaxdl.nn.precision import cast_floating
from jaxdl.train import sharding
from jaxdl.train.step import model_kwargs


def _bleu(hyps, refs):
  from jaxdl.text.bleu import corpus_bleu  # pylint: disable=g-import-not-at-top
  return corpus_bleu(hyps, refs).score


def _exact(hyps, refs):
  from jaxdl.text.bleu import exact_match  # pylint: disable=g-import-not-at-top
  return exact_match(hyps, refs)


def _wer(hyps, refs):
  from jaxdl.speech.error_rates import wer  # pylint: disable=g-import-not-at-top
  return float(wer(refs, hyps))


def _cer(hyps, refs):
  from jaxdl.speech.error_rates import cer  # pylint: disable=g-import-not-at-top
  return float(cer(refs, hyps))


# name -> (metric(hypotheses, references) -> float, the better direction for train.best_mode)
GENERATION_METRICS: dict[str, tuple[Callable[[list[str], list[str]], float], str]] = {
    'bleu': (_bleu, 'max'),               # corpus BLEU-4, 0-100 (sacrebleu)
    'exact_match': (_exact, 'max'),       # fraction of outputs equal to their reference
    'wer': (_wer, 'min'),                 # corpus word error rate, Σ errors / Σ reference words (jiwer)
    'cer': (_cer, 'min'),                 # corpus character error rate
}


def check(config, model, dataset) -> tuple[str, ...]:
  """The configured generation metrics, after checking that model and data can produce and score them."""
  names = tuple(config.get('decode', {}).get('metrics', ()))
  if not names:
    return ()
  unknown = [n for n in names if n not in GENERATION_METRICS]
  if unknown:
    raise UserError(f'config.decode.metrics has unknown {unknown}', 'names from: ' + ', '.join(GENERATION_METRICS),
                    'fix --config.decode.metrics')
  if not callable(getattr(model, 'generate', None)):
    raise UserError(f'config.decode.metrics is set but model {config.model.name!r} does not generate',
                    'a sequence model with a `generate` method', "set --config.decode.metrics='()'")
  if getattr(dataset, 'vocabulary', None) is None:
    raise UserError(f'config.decode.metrics is set but dataset {config.data.name!r} has no vocabulary to turn ids '
                    'into text', 'a text or speech dataset', "set --config.decode.metrics='()'")
  return names


def make_generate_step(model, decode_config, compute_dtype: str = 'float32', mesh=None) -> Callable:
  """`generate(state, batch) -> ids [B, L]` with the configured decoding options (jit it). mesh: the trainer's
  ('data',) mesh; the decoder is traced under it (as an abstract mesh), so per-row steps without a GSPMD rule (beam
  search's top-k: `jaxdl.text.beam_search.row_top_k`) run per device on their rows."""
  kw = {'beam_width': int(decode_config.get('beam_width', 1)), 'max_length': int(decode_config.get('max_length', 0)),
        'length_penalty': float(decode_config.get('length_penalty', 0.0))}

  def generate(state, batch):
    params = state.params
    if np.dtype(compute_dtype) != np.float32:
      params = cast_floating(params, compute_dtype)
    with jax.sharding.use_abstract_mesh(mesh.abstract_mesh) if mesh is not None else contextlib.nullcontext():
      return model.apply({'params': params, **state.model_state}, batch['inputs'], method='generate',
                         **kw, **model_kwargs(model, batch))

  return generate


def _global(x) -> np.ndarray:
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(jax.device_get(x))


def decode_split(setup, state, split: str) -> tuple[list[str], list[str]]:
  """(hypotheses, references) for every example of `split`, in the eval pipeline's order."""
  vocab = setup.dataset.vocabulary
  source = setup.dataset.source(split)
  refs_of = getattr(source, 'references', None)
  hyps, refs = [], []
  for batch in data_lib.eval_batches(setup.dataset, split, global_batch_size=setup.eval_batch_size,
                                     process_index=jax.process_index(), process_count=jax.process_count()):
    gbatch = sharding.to_global(batch, setup.data_sharding)
    ids = _global(setup.generate_step(state, gbatch))
    mask = _global(gbatch['mask']) > 0
    if refs_of is not None and 'index' in batch:
      index = _global(gbatch['index'])
      ref_text = [refs_of[int(i)] for i in index]
    else:
      ref_text = [vocab.decode(row) for row in _global(gbatch['targets'])]
    for row, keep in enumerate(mask):
      if keep:
        hyps.append(vocab.decode(ids[row]))
        refs.append(ref_text[row])
  return hyps, refs


def generation_metrics(setup, state, split: str) -> dict[str, Any]:
  """The configured host-side metrics of the decoded split."""
  hyps, refs = decode_split(setup, state, split)
  return {name: float(GENERATION_METRICS[name][0](hyps, refs)) for name in setup.generation_metrics}
