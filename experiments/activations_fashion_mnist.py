"""The activation-function ladder on FashionMNIST (anchor: UvA Deep Learning tutorial 3, in JAX).

Reproduces: T19 — needs data: MLP 784-512-256-256-128-10, SGD lr 1e-2 momentum 0.9: test accuracy sigmoid 78.46%,
            tanh 88.57, ReLU 88.65, LeakyReLU 88.33, ELU 88.32, Swish 88.33.
Data:       fashion_mnist through tfds.data_source once prepared (`needs-data` until then). The default config runs
            offline on the built-in digits resized to 28×28 (`digits28`), so the same ladder can be run anywhere:
Command:    jaxdl train --config=experiments/activations_fashion_mnist.py --workdir=runs/act_relu
            jaxdl train --config=experiments/activations_fashion_mnist.py --workdir=runs/act_fmnist \
                --config.data.name=fashion_mnist --config.train.num_steps=23450      (50 epochs of batch 128)
            jaxdl reproduce activations_fashion_mnist --out=report/   (runs the six activations once the data exists)
Expected:   within 1.5 points of each anchor accuracy (sigmoid far behind the others).
CPU time:   ≈ 1 min offline; ≈ 6 × 15 min on FashionMNIST.
"""
from jaxdl.config import base_config
from jaxdl.reproduce import Claim, ClaimResult, verdict

ANCHOR = {'sigmoid': 78.46, 'tanh': 88.57, 'relu': 88.65, 'leaky_relu': 88.33, 'elu': 88.32, 'swish': 88.33}
CLAIMS = {
    'T19': Claim('T19', 'FashionMNIST MLP 512-256-256-128, SGD 1e-2 m 0.9: sigmoid 78.46%, tanh 88.57, ReLU 88.65, '
                 'LeakyReLU 88.33, ELU 88.32, Swish 88.33', 'anchor (UvA JAX tutorial 3)',
                 'each activation within 1.5 points of the anchor', needs='fashion_mnist'),
}


def get_config():
  c = base_config()
  c.model.name = 'mlp'
  c.model.hidden = (512, 256, 256, 128)
  c.model.activation = 'relu'
  c.data.name = 'digits28'
  c.optimizer.name = 'momentum'
  c.optimizer.learning_rate = 1e-2
  c.optimizer.momentum = 0.9
  c.train.num_steps = 2000
  c.train.batch_size = 128
  c.train.log_every = 100
  c.train.eval_every = 500
  c.train.checkpoint_every = 1000
  c.train.best_metric = 'accuracy'
  c.train.best_mode = 'max'
  return c


def reproduce(ctx):
  measured = {}
  for act in ANCHOR:
    c = get_config()
    c.data.name = 'fashion_mnist'
    c.model.activation = act
    c.train.num_steps = 50 * 60000 // c.train.batch_size
    c.train.eval_every = c.train.num_steps // 10
    measured[act] = 100 * ctx.train(c, act)['eval']['accuracy']
  ok = all(abs(measured[a] - ANCHOR[a]) <= 1.5 for a in ANCHOR)
  return [ClaimResult('T19', ', '.join(f'{a} {v:.2f}%' for a, v in measured.items()), verdict(ok))]
