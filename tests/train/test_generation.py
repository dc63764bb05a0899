"""The trainer on variable-length data: padded batches reach the model with their paddings, sequence losses average
per valid token, and evaluation that generates scores decoded text (jaxdl.train.generation)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl import data as data_lib
from jaxdl import registry
from jaxdl.config import base_config
from jaxdl.data import buckets
from jaxdl.errors import UserError
from jaxdl.text.vocab import Vocabulary
from jaxdl.train.loop import train_and_evaluate
from jaxdl.train.setup import TrainSetup

VOCAB = Vocabulary(list('abcdef'))


class _Echo(nn.Module):
  """Per-position classifier of the input token (the copy task), aware of its paddings."""
  num_outputs: int = 10
  batch_keys = ('inputs_paddings',)

  @nn.compact
  def __call__(self, inputs, inputs_paddings, train: bool = False):
    h = nn.Embed(self.num_outputs, 16)(inputs.astype(jnp.int32))
    return nn.Dense(self.num_outputs)(jnp.tanh(h)) * (1.0 - inputs_paddings)[..., None]

  def generate(self, inputs, inputs_paddings, beam_width=1, max_length=0, length_penalty=0.0):
    ids = jnp.argmax(self(inputs, inputs_paddings), -1)
    return jnp.where(inputs_paddings > 0, 0, ids).astype(jnp.int32)


def _copy_dataset():
  rng = np.random.default_rng(0)
  splits = {}
  for split, n in (('train', 96), ('test', 37)):
    texts = [''.join(rng.choice(list('abcdef'), rng.integers(1, 13))) for _ in range(n)]
    ids = [np.asarray(VOCAB.encode(t), np.int32) for t in texts]
    splits[split] = buckets.RaggedSource({'inputs': ids, 'targets': ids}, {'inputs': (4, 8, 12), 'targets': (4, 8, 12)},
                                         references=texts, name=f'copy {split}')
  info = data_lib.DatasetInfo('copy', 'classification', (12,), len(VOCAB), {k: len(v) for k, v in splits.items()})
  return data_lib.Dataset(info, splits, vocabulary=VOCAB)


@pytest.fixture
def registered(monkeypatch):
  registry.MODELS.names(), registry.DATASETS.names()   # populate first
  ds = _copy_dataset()
  monkeypatch.setitem(registry.MODELS._entries, '_echo', registry.Entry('_echo', _Echo, {}))
  monkeypatch.setitem(registry.DATASETS._entries, '_copy', registry.Entry('_copy', lambda: ds, {}))
  monkeypatch.setattr(data_lib, '_CACHE', {})
  return ds


def _config(steps=60, metrics=('exact_match', 'bleu', 'cer')):
  c = base_config()
  c.model.name = '_echo'
  c.data.name = '_copy'
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 0.05
  c.train.update(num_steps=steps, batch_size=8, eval_batch_size=8, log_every=20, eval_every=0, checkpoint_every=0,
                 best_metric='')
  c.decode.metrics = metrics
  return c


def test_generating_evaluation_matches_an_independent_decode(registered, tmp_path):
  ds = registered
  summary, state = train_and_evaluate(_config(), tmp_path / 'run', quiet=True, return_state=True)
  ev = summary['eval']
  for k in ('exact_match', 'bleu', 'cer', 'loss', 'accuracy'):
    assert k in ev
  # Reference: every test example alone, unpadded, decoded and compared in NumPy.
  model, src = _Echo(num_outputs=len(VOCAB)), ds.source('test')
  variables = {'params': jax.device_get(state.params)}
  hits, errs, chars, nll, correct = 0, 0, 0, 0.0, 0
  for i in range(len(src)):
    x = src[i]['inputs'][None]
    logits = np.asarray(model.apply(variables, x, np.zeros(x.shape, np.float32)))[0]
    hyp = VOCAB.decode(logits.argmax(-1))
    ref = src.references[i]
    hits += hyp == ref
    errs += sum(a != b for a, b in zip(hyp, ref)) + abs(len(hyp) - len(ref))   # same length: substitutions only
    chars += len(ref)
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(-1,
                                                                                                    keepdims=True)
    nll -= logp[np.arange(len(ref)), src[i]['targets']].sum()
    correct += (logits.argmax(-1) == src[i]['targets']).sum()
  assert ev['exact_match'] == pytest.approx(hits / len(src))
  assert ev['cer'] == pytest.approx(errs / chars)
  assert ev["loss"] == pytest.approx(nll / chars, rel=1e-4, abs=1e-6)  # per valid token (padded ones: log 10 each)
  assert ev['accuracy'] == pytest.approx(correct / chars, rel=1e-5)
  assert ev['exact_match'] > 0.9                                       # the copy task is learnt


def test_best_metric_may_name_a_generation_metric(registered, tmp_path):
  c = _config(steps=4)
  c.train.best_metric = 'exact_match'
  c.train.best_mode = 'max'
  TrainSetup(c)
  c.train.best_metric = 'nope'
  with pytest.raises(UserError, match='exact_match'):
    TrainSetup(c)


def test_unknown_generation_metric_is_a_user_error(registered):
  with pytest.raises(UserError, match='decode.metrics'):
    TrainSetup(_config(metrics=('rouge',)))
