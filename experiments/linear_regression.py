"""Least squares by gradient descent on the course's toy set, compared with the closed form.

Reproduces: L5 (batch gradient descent on linear regression converges to the closed-form solution).
Data:       N = 30, y = 3x + 2 + U(−0.1, 0.1) (seed 000, "Example regression problem"); model f(x) = θᵀ[1; x];
            L2 loss (y − f(x))², full-batch gradient descent.
Command:    jaxdl train --config=experiments/linear_regression.py --workdir=runs/linear_regression
Expected:   θ within 1e-3 of numpy.linalg.lstsq's θ ≈ [2, 3] (bias, slope); train MSE ≈ 0.003 (the noise variance 0.1²/3).
CPU time:   ≈ 5 s on 2 cores.
"""
from jaxdl.config import base_config

CLAIMS = ['L5']


def get_config():
  c = base_config()
  c.model.name = 'linear'
  c.model.num_outputs = 1
  c.data.name = 'toy_regression'
  c.loss.name = 'squared_error'
  c.optimizer.name = 'sgd'
  c.optimizer.learning_rate = 0.2
  c.train.num_steps = 2000
  c.train.batch_size = 30          # full batch: the N = 30 points
  c.train.eval_every = 500
  c.train.checkpoint_every = 1000
  c.train.log_every = 250
  c.train.best_metric = 'loss'
  return c
