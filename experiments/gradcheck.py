"""Gradient checking and the two modes of automatic differentiation.

Reproduces: T17 (a finite-difference gradient check agrees with autodiff; forward mode (jvp) and reverse mode (vjp)
            agree — on the notes' two-path graph y = y₃y₄, where both also equal the notes' hand-derived formulas).
Command:    jaxdl reproduce gradcheck --out=report/
            jaxdl train --config=experiments/gradcheck.py --workdir=runs/gradcheck   (the tanh MLP that is checked)
Expected:   relative error of autodiff vs central differences ≲ 1e-2 in float32 on every parameter of an MLP;
            jvp = vjp = formulas to 1e-5.
CPU time:   ≈ 20 s.
"""
import jax
import jax.numpy as jnp
import numpy as np

from jaxdl.inspect import autodiff
from jaxdl import data as data_lib
from jaxdl.config import base_config
from jaxdl.losses import build_loss
from jaxdl.models import build_model
from jaxdl.reproduce import Claim, ClaimResult, verdict
from jaxdl.train.state import init_variables

CLAIMS = {
    'T17': Claim('T17', 'finite-difference gradient check agrees with autodiff; forward mode (jvp) and reverse mode (vjp) '
                 'agree', '003, 000', 'gradcheck passes (rtol 2e-2, float32 central differences, eps 1e-2) on every '
                 'parameter of a 64→16→10 tanh MLP; jvp, vjp and the notes\' formulas agree to 1e-5'),
}


def get_config():
  c = base_config()
  c.model.name = 'mlp'
  c.model.hidden = (16,)
  c.model.activation = 'tanh'
  c.data.name = 'digits'
  c.optimizer.name = 'sgd'
  c.optimizer.learning_rate = 0.1
  c.train.num_steps = 500
  c.train.batch_size = 32
  c.train.log_every = 50
  c.train.eval_every = 250
  c.train.checkpoint_every = 0
  return c


def reproduce(ctx):
  c = get_config()
  ds = data_lib.get_dataset(c.data)
  model = build_model(c.model, ds.info)
  loss = build_loss(c.loss)
  x, y = data_lib.split_arrays(ds, 'train', limit=16)
  params, _ = init_variables(model, jax.random.PRNGKey(0), ds.info.input_shape)
  f = lambda p: jnp.mean(loss(model.apply({'params': p}, x), {'targets': y})['loss'])
  try:
    worst = autodiff.gradcheck(f, params, eps=1e-2, rtol=2e-2, atol=1e-4)
    n = sum(v.size for v in jax.tree.leaves(params))
    ok_fd, fd_msg = True, f'all {n} partial derivatives within tolerance (worst uses {100 * worst:.0f}% of it)'
  except AssertionError as e:
    ok_fd, fd_msg = False, str(e)
  rng = np.random.default_rng(0)
  args = [jnp.asarray(a, jnp.float32) for a in (rng.normal(size=8) * 0.3, rng.normal(size=8) * 0.3, 0.1,
                                                rng.normal(size=8) * 0.3, -0.2)]
  g = lambda x_: autodiff.example_graph(x_, *args[1:])
  fwd, rev = autodiff.forward_mode_gradient(g, args[0]), autodiff.reverse_mode_gradient(g, args[0])
  errs = [float(jnp.max(jnp.abs(fwd - rev))),
          float(jnp.max(jnp.abs(fwd - autodiff.example_graph_forward_formula(*args)))),
          float(jnp.max(jnp.abs(rev - autodiff.example_graph_reverse_formula(*args))))]
  ok = ok_fd and max(errs) < 1e-5
  return [ClaimResult('T17', f'gradcheck: {fd_msg}; |jvp − vjp| = {errs[0]:.1e}, |jvp − forward formula| = {errs[1]:.1e}, '
                      f'|vjp − reverse formula| = {errs[2]:.1e}', verdict(ok),
                      'Forward mode needs one jvp per input coordinate (8 here); reverse mode one vjp for the whole '
                      'gradient — why backpropagation is reverse mode.')]
