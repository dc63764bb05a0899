"""Parameter counts of small networks, by `jaxdl summary` (jax.eval_shape: nothing is allocated).

Reproduces: L12 (a 3→4→2 MLP has (4·3+4)+(2·4+2) = 26 parameters; a 3→2→2→1 network with a bias-free output has 16).
Command:    jaxdl summary mlp --input-shape=3 --model.hidden='(4,)' --model.num_outputs=2
            jaxdl summary mlp --input-shape=3 --model.hidden='(2, 2)' --model.num_outputs=1 --model.output_bias=False
            jaxdl reproduce param_counts --out=report/
            jaxdl train --config=experiments/param_counts.py --workdir=runs/param_counts   (trains the 4-unit MLP)
Expected:   26 and 16. (`get_config()` trains the same 4-unit sigmoid MLP on the 2-D blobs: a 2→4→2 network.)
CPU time:   ≈ 3 s.
"""
import ml_collections

from jaxdl.config import base_config
from jaxdl.models import build_model
from jaxdl.reproduce import Claim, ClaimResult, verdict
from jaxdl.inspect.summary import format_table, parameter_table

CLAIMS = {
    'L12': Claim('L12', '3→4→2 MLP has (4·3+4)+(2·4+2)=26; 3→2→2→1 net with bias-free output has 16', '004 W1, 002',
                 'jaxdl summary totals equal 26 and 16'),
}


def get_config():
  c = base_config()
  c.model.name = 'mlp'
  c.model.hidden = (4,)
  c.model.activation = 'sigmoid'
  c.data.name = 'two_blobs'
  c.optimizer.name = 'sgd'
  c.optimizer.learning_rate = 0.5
  c.train.num_steps = 300
  c.train.batch_size = 20
  c.train.log_every = 50
  c.train.eval_every = 100
  c.train.checkpoint_every = 0
  return c


def reproduce(ctx):
  nets = {'3→4→2': {'hidden': (4,), 'num_outputs': 2},
          '3→2→2→1, bias-free output': {'hidden': (2, 2), 'num_outputs': 1, 'output_bias': False}}
  totals, tables = {}, []
  for label, kw in nets.items():
    model = build_model(ml_collections.ConfigDict({'name': 'mlp', 'activation': 'sigmoid', **kw}))
    t = parameter_table(model, (3,))
    totals[label] = t['total_params']
    tables.append(format_table(t, label))
  ok = totals['3→4→2'] == 26 and totals['3→2→2→1, bias-free output'] == 16
  ctx.log('\n' + '\n\n'.join(tables))
  return [ClaimResult('L12', ', '.join(f'{k}: {v}' for k, v in totals.items()), verdict(ok),
                      '```\n' + '\n\n'.join(tables) + '\n```')]
