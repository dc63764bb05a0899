"""Dropout (Srivastava et al. 2014): expectation of standard vs inverted dropout, and dropout as a regulariser.

Reproduces: T9 (inverted dropout preserves the expectation; with standard dropout at p = 0.5 the expected
            pre-activation of z = θ₁x₁ + θ₂x₂ is ½(θ₁x₁ + θ₂x₂), hence the test-time scaling).
Model:      MLP 64→256→256→10 on the digits, input dropout 0.2 and hidden dropout 0.5 (the notes' defaults) vs none.
Command:    jaxdl train --config=experiments/dropout.py --workdir=runs/dropout
            jaxdl reproduce dropout --out=report/
Expected:   Monte-Carlo means within 1% of the formulas; dropout lowers the train–test gap.
CPU time:   ≈ 40 s.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import plots
from jaxdl.config import base_config
from jaxdl.reproduce import Claim, ClaimResult, verdict

CLAIMS = {
    'T9': Claim('T9', 'inverted dropout preserves the expectation; E[z]=½(θ₁x₁+θ₂x₂) at p=0.5', '000, 004 F24',
                'Monte-Carlo means over 200k masks within 1% of θ₁x₁+θ₂x₂ (inverted, flax nn.Dropout) and of '
                '½(θ₁x₁+θ₂x₂) (standard); trained with dropout, the train–test accuracy gap shrinks'),
}


def get_config():
  c = base_config()
  c.model.name = 'mlp'
  c.model.hidden = (256, 256)
  c.model.dropout_rate = 0.5
  c.model.input_dropout_rate = 0.2
  c.data.name = 'digits'
  c.optimizer.name = 'momentum'
  c.optimizer.learning_rate = 0.05
  c.optimizer.momentum = 0.9
  c.train.num_steps = 3000
  c.train.batch_size = 64
  c.train.log_every = 100
  c.train.eval_every = 500
  c.train.checkpoint_every = 0
  c.train.best_metric = 'accuracy'
  c.train.best_mode = 'max'
  return c


def reproduce(ctx):
  theta, x = jnp.array([0.7, -1.3]), jnp.array([2.0, 0.5])
  exact = float(theta @ x)
  keys = jax.random.split(jax.random.PRNGKey(0), 200_000)
  drop = nn.Dropout(0.5, deterministic=False)
  inverted = jax.vmap(lambda k: drop.apply({}, x, rngs={'dropout': k}) @ theta)(keys)      # kept ×1/(1−p)
  standard = jax.vmap(lambda k: (jax.random.bernoulli(k, 0.5, x.shape) * x) @ theta)(keys)  # kept ×1
  inv_mean, std_mean = float(inverted.mean()), float(standard.mean())
  ok_mc = abs(inv_mean - exact) < 0.01 * abs(exact) and abs(std_mean - 0.5 * exact) < 0.01 * abs(0.5 * exact)
  gaps, series = {}, {}
  for name, (p_in, p_h) in {'no dropout': (0.0, 0.0), 'dropout 0.2/0.5': (0.2, 0.5)}.items():
    c = get_config()
    c.model.input_dropout_rate, c.model.dropout_rate = p_in, p_h
    slug = name.replace(' ', '_').replace('/', '_').replace('.', '')
    s = ctx.train(c, slug)
    from jaxdl.train.evaluation import evaluate_checkpoint  # pylint: disable=g-import-not-at-top
    train_acc = evaluate_checkpoint(c, ctx.workdir(slug), 'latest', split='train')['eval']['accuracy']
    gaps[name] = (train_acc, s['eval']['accuracy'])
    series[name] = plots.metric_history(ctx.workdir(slug), 'eval', 'loss')
  fig = plots.curves(series, ctx.figure('test_loss'), ylabel='test loss', title='MLP 256-256 on digits')
  gap = {k: a - b for k, (a, b) in gaps.items()}
  ok = ok_mc and gap['dropout 0.2/0.5'] < gap['no dropout']
  return [ClaimResult('T9', f'θᵀx = {exact:.4f}: inverted-dropout mean {inv_mean:.4f}, standard-dropout mean {std_mean:.4f} '
                      f'(½θᵀx = {0.5 * exact:.4f}); train/test accuracy without dropout {gaps["no dropout"][0]:.3f}/'
                      f'{gaps["no dropout"][1]:.3f}, with {gaps["dropout 0.2/0.5"][0]:.3f}/{gaps["dropout 0.2/0.5"][1]:.3f}',
                      verdict(ok), 'flax nn.Dropout is inverted dropout: kept units are scaled by 1/(1 − p) in '
                      'training, so evaluation is a plain forward pass.', [fig])]
