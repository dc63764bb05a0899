"""Transfer learning: partial restore with a new head, frozen and per-layer learning rates."""
import jax
import ml_collections
import numpy as np
import pytest

from helpers import small_digits_config
from jaxdl.errors import UserError
from jaxdl.optim import build_optimizer
from jaxdl.optim.chains import param_labels
from jaxdl.train.loop import train_and_evaluate
from jaxdl.train.pretrained import load_run
from jaxdl.train.setup import TrainSetup


def test_lr_multipliers_and_freeze_scale_sgd_updates_exactly():
  params = {'trunk': {'kernel': np.ones((2, 2), np.float32)}, 'head': {'kernel': np.ones((2,), np.float32)},
            'other': {'bias': np.ones((3,), np.float32)}}
  grads = jax.tree.map(lambda p: np.full_like(p, 0.5), params)
  cfg = ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': 0.1, 'freeze': ('other',),
                                   'lr_multipliers': (('head', 10.0), ('trunk', 0.1))})
  tx, _ = build_optimizer(cfg, 10)
  updates, _ = tx.update(grads, tx.init(params), params)
  np.testing.assert_allclose(updates['head']['kernel'], -0.1 * 10 * 0.5, rtol=1e-6)
  np.testing.assert_allclose(updates['trunk']['kernel'], -0.1 * 0.1 * 0.5, rtol=1e-6)
  np.testing.assert_array_equal(updates['other']['bias'], 0.0)
  assert param_labels(params, ('other',), (('head', 1.0),)) == {
      'trunk': {'kernel': 'train'}, 'head': {'kernel': 'lr0'}, 'other': {'bias': 'frozen'}}


@pytest.mark.parametrize('bad', [(('head',),), (('head', -1.0),), ((1, 2.0),)])
def test_bad_lr_multipliers_are_user_errors(bad):
  with pytest.raises(UserError, match='lr_multipliers'):
    build_optimizer(ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': 0.1, 'lr_multipliers': bad}), 10)


def test_init_from_replaces_the_head_and_keeps_the_trunk(tmp_path):
  src = small_digits_config(num_steps=20, checkpoint_every=20, eval_every=20)
  train_and_evaluate(src, tmp_path / 'src', quiet=True)
  _, _, src_vars = load_run(str(tmp_path / 'src'))

  tgt = small_digits_config(num_steps=20, checkpoint_every=20, eval_every=20)
  tgt.data.classes = (0, 1, 2)
  tgt.train.init_from = str(tmp_path / 'src')
  with pytest.raises(UserError, match='init_from_exclude'):   # the 10-way head does not fit 3 classes
    TrainSetup(tgt).init_state()
  tgt.train.init_from_exclude = ('head',)
  state = TrainSetup(tgt).init_state()
  trunk = [k for k in src_vars['params'] if k != 'head']
  assert trunk
  for k in trunk:
    for p in src_vars['params'][k]:
      np.testing.assert_array_equal(np.asarray(state.params[k][p]), np.asarray(src_vars['params'][k][p]))
  assert state.params['head']['kernel'].shape[-1] == 3

  tgt.optimizer.freeze = tuple(trunk)
  train_and_evaluate(tgt, tmp_path / 'tgt', quiet=True)
  _, _, tgt_vars = load_run(str(tmp_path / 'tgt'))
  for k in trunk:   # frozen: unchanged after training
    for p in src_vars['params'][k]:
      np.testing.assert_array_equal(np.asarray(tgt_vars['params'][k][p]), np.asarray(src_vars['params'][k][p]))
  assert not np.allclose(np.asarray(tgt_vars['params']['head']['kernel']), np.asarray(state.params['head']['kernel']))
