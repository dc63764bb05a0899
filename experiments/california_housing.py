"""The notes' worked regression example: an MLP on California housing with MSE, Adam 1e-3 and a step schedule.

Reproduces: no numbered claim — the walk-through of seed 000 "Example on a regression problem" (load, normalise,
            define the network with Nh = 64, MSE loss, Adam lr 1e-3 + StepLR, iterate and monitor, test).
Data:       needs data: scikit-learn's California housing (fetch once:
            python -c "from sklearn.datasets import fetch_california_housing as f; f()"). The default config runs
            offline on a built-in 1-D regression set so the command works on a fresh machine.
Command:    jaxdl train --config=experiments/california_housing.py --workdir=runs/california \
                --config.data.name=california_housing --config.train.batch_size=64 --config.train.num_steps=12900
Expected:   on California housing, test MSE ≈ 0.3 (RMSE ≈ 0.55, in units of 100 k$) after 50 epochs.
CPU time:   ≈ 30 s offline; ≈ 3 min on California housing.
"""
from jaxdl.config import base_config


def get_config():
  c = base_config()
  c.model.name = 'mlp'
  c.model.hidden = (64, 64)
  c.model.num_outputs = 1
  c.data.name = 'noisy_function'
  c.loss.name = 'squared_error'
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 1e-3
  c.train.num_steps = 3000
  c.train.batch_size = 16
  c.train.log_every = 100
  c.train.eval_every = 500
  c.train.checkpoint_every = 1000
  return c
