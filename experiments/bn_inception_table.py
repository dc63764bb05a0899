"""Batch normalisation on Inception/ImageNet (Ioffe & Szegedy 2015, Table/Figure 2): a claim on paper only.

Reproduces: T5 — on paper: steps to reach 72.2% top-1: Inception 31.0M, BN-Baseline 13.3M, BN-x5 2.1M, BN-x30 2.7M;
            max accuracy 72.2 / 72.7 / 73.0 / 74.8%, BN-x5-Sigmoid 69.8%. ImageNet training is out of reach here; the
            mechanism (BN speeds up training and allows higher learning rates) is measured on the digits by the
            `covariate_shift` experiment (T4).
Command:    jaxdl reproduce bn_inception_table --out=report/      (records the claim as on-paper)
            jaxdl train --config=experiments/bn_inception_table.py --workdir=runs/bn_mlp   (a BN MLP at 5× the lr)
Expected:   status on-paper.
CPU time:   instant (the train command: ≈ 20 s).
"""
from jaxdl.config import base_config
from jaxdl.reproduce import Claim, ClaimResult

CLAIMS = {
    'T5': Claim('T5', 'BN table (Inception/ImageNet): steps to 72.2%: 31.0M / BN-Baseline 13.3M / BN-x5 2.1M / BN-x30 '
                '2.7M; max 72.2/72.7/73.0/74.8%, BN-x5-Sigmoid 69.8%', '002 L1667 (paper)', 'on paper only'),
}


def get_config():
  c = base_config()
  c.model.name = 'mlp'
  c.model.hidden = (100, 100, 100)
  c.model.activation = 'sigmoid'
  c.model.batch_norm = True
  c.data.name = 'digits'
  c.optimizer.name = 'sgd'
  c.optimizer.learning_rate = 0.5      # "BN-x5": five times the rate a sigmoid MLP without BN tolerates
  c.train.num_steps = 1500
  c.train.batch_size = 64
  c.train.log_every = 100
  c.train.eval_every = 500
  c.train.checkpoint_every = 0
  return c


def reproduce(ctx):
  del ctx
  return [ClaimResult('T5', 'not measured (ImageNet-scale; see T4 for the mechanism on the digits)', 'on-paper',
                      'Ioffe & Szegedy (2015), Figure 2 / Table 2: the numbers are quoted from the paper.')]
