"""Prediction / snapshot ensembles and knowledge distillation, end to end on the digits."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from helpers import small_digits_config
from jaxdl.inspect.ensemble import evaluate_ensemble
from jaxdl.errors import UserError
from jaxdl.losses import build_loss
from jaxdl.train.evaluation import evaluate_checkpoint
from jaxdl.train.loop import train_and_evaluate


@pytest.fixture(scope='module')
def two_runs(tmp_path_factory):
  dirs = []
  for seed in (0, 1):
    wd = tmp_path_factory.mktemp(f'seed{seed}')
    train_and_evaluate(small_digits_config(num_steps=40, seed=seed), wd, quiet=True)
    dirs.append(wd)
  return dirs


def test_one_member_ensemble_equals_plain_evaluation(two_runs):
  c = small_digits_config(num_steps=40)
  ens = evaluate_ensemble(c, [(two_runs[0], 'latest')])
  ref = evaluate_checkpoint(c, two_runs[0], 'latest')
  np.testing.assert_allclose(ens['eval']['accuracy'], ref['eval']['accuracy'], rtol=1e-6)
  np.testing.assert_allclose(ens['eval']['loss'], ref['eval']['loss'], rtol=1e-4)


def test_prediction_and_snapshot_ensembles(two_runs):
  c = small_digits_config(num_steps=40)
  ens = evaluate_ensemble(c, [(two_runs[0], 'latest'), (two_runs[1], 'latest')])
  assert len(ens['members']) == 2 and 0 < ens['eval']['accuracy'] <= 1
  snap = evaluate_ensemble(c, [(two_runs[0], '20'), (two_runs[0], '40')])
  assert [m['step'] for m in snap['members']] == [20, 40]
  with pytest.raises(UserError, match='not in'):
    evaluate_ensemble(c, [(two_runs[0], '7')])


def test_distillation_loss_matches_hinton_formula():
  fn = build_loss(ml_collections.ConfigDict({'name': 'distillation', 'temperature': 3.0, 'alpha': 0.25}))
  rng = np.random.default_rng(0)
  s, t = rng.normal(size=(4, 5)).astype(np.float32), rng.normal(size=(4, 5)).astype(np.float32)
  y = np.array([0, 1, 2, 3])
  out = fn(jnp.asarray(s), {'targets': jnp.asarray(y), 'teacher_logits': jnp.asarray(t)})
  soft = lambda z: np.exp(z - z.max(-1, keepdims=True)) / np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)
  ce = -np.log(soft(s)[np.arange(4), y])
  pt, ps = soft(t / 3), soft(s / 3)
  kl = np.sum(pt * (np.log(pt) - np.log(ps)), -1)
  np.testing.assert_allclose(out['loss'], 0.25 * ce + 0.75 * 9 * kl, rtol=1e-5)
  # No gradient flows into the teacher.
  g = jax.grad(lambda tt: jnp.sum(fn(jnp.asarray(s), {'targets': jnp.asarray(y), 'teacher_logits': tt})['loss']))(
      jnp.asarray(t))
  assert np.all(np.asarray(g) == 0)


def test_student_trains_against_a_teacher_run(two_runs, tmp_path):
  c = small_digits_config(num_steps=20)
  c.model.hidden = (8,)
  c.loss = ml_collections.ConfigDict({'name': 'distillation', 'teacher': str(two_runs[0]), 'temperature': 4.0,
                                      'alpha': 0.5})
  s = train_and_evaluate(c, tmp_path, quiet=True)
  assert np.isfinite(s['train']['loss']) and 'soft_kl' in s['eval']
