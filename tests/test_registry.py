"""Every registered model initialises and runs one real train step (a model is tested by being registered)."""
import jax
import ml_collections
import numpy as np
import pytest

from jaxdl.losses import build_loss
from jaxdl.optim import build_optimizer
from jaxdl.models import build_model, count_params
from jaxdl.registry import LOSSES, MODELS, OPTIMIZERS
from jaxdl.train.state import create_train_state
from jaxdl.train.step import make_train_step


# Siblings whose code path a lighter registered model already trains in the default tier (resnet20; strided_cnn_c
# for the All-CNN family): their one step runs in the slow tier.
SIBLINGS = {'resnet32', 'allcnn_c', 'convpool_cnn_c', 'deepspeech2'}   # deepspeech2: ds2_small's defaults


def _model_params():
  # Heavy models (ImageNet-sized zoo entries) train one step in the slow tier only; their parameter counts are
  # checked in the default tier through jax.eval_shape (tests/models/test_zoo_*.py).
  return [pytest.param(n, marks=pytest.mark.slow) if MODELS.meta(n).get('heavy') or n in SIBLINGS else n
          for n in MODELS.names()]


@pytest.mark.parametrize('name', _model_params())
def test_every_model_trains_one_step(name):
  shape = MODELS.meta(name)['example_input_shape']
  model = build_model(ml_collections.ConfigDict({'name': name, 'num_outputs': 3}))
  loss = build_loss(ml_collections.ConfigDict({'name': 'softmax_cross_entropy'}))
  tx, _ = build_optimizer(ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': 0.1}), 1)
  state = create_train_state(model, tx, jax.random.PRNGKey(0), shape)
  assert count_params(state.params) > 0
  batch = {'inputs': np.random.default_rng(0).normal(size=(4, *shape)).astype(np.float32),
           'targets': np.array([0, 1, 2, 0], np.int32)}
  if 'example_target_shape' in MODELS.meta(name):        # per-step outputs (many-to-many): a label per step
    batch['targets'] = np.random.default_rng(1).integers(0, 3, (4, *MODELS.meta(name)['example_target_shape']))
  for key in getattr(model, 'batch_keys', ()):           # padded sequence models: no padding, teacher-forced inputs
    batch[key] = (np.zeros((4, shape[0]), np.float32) if key.endswith('_paddings') else
                  np.ones_like(batch['targets']))
  new, metrics = jax.jit(make_train_step(model, loss, tx))(state, batch, jax.random.PRNGKey(0))
  assert np.isfinite(float(metrics['loss']))
  assert int(new.step) == 1
  moved = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))), state.params, new.params)
  assert any(jax.tree.leaves(moved)), 'one SGD step should change the parameters'


@pytest.mark.parametrize('name', OPTIMIZERS.names())
def test_every_optimizer_builds_and_descends(name):
  meta = OPTIMIZERS.meta(name)
  lr = meta.get('example_learning_rate', 0.05)
  tx, _ = build_optimizer(ml_collections.ConfigDict({'name': name, 'learning_rate': lr}), 100)
  params = {'w': np.array([1.0, -2.0], np.float32)}
  f = lambda p: 0.5 * (p['w'] ** 2).sum()
  state = tx.init(params)
  for _ in range(meta.get('example_steps', 20)):
    g = jax.grad(f)(params)
    upd, state = tx.update(g, state, params)
    params = jax.tree.map(lambda p, u: p + u, params, upd)
  assert f(params) < 2.5 * 0.9, f'{name} did not reduce a quadratic'


def test_registries_list_their_names():
  assert {'linear', 'mlp'} <= set(MODELS.names())
  assert {'sgd', 'momentum', 'nesterov', 'adam', 'adamw'} <= set(OPTIMIZERS.names())
  assert {'softmax_cross_entropy', 'squared_error'} <= set(LOSSES.names())
