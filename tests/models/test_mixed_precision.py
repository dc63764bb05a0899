"""Every registered network computes in bfloat16 when given bfloat16 weights and inputs (train.compute_dtype), i.e.
no layer silently promotes back to float32. eval_shape only: nothing is computed."""
import jax
import jax.numpy as jnp
import ml_collections
import pytest

from jaxdl.models import build_model
from jaxdl.registry import MODELS
from jaxdl.inspect.summary import abstract_variables
from jaxdl.nn.precision import cast_floating

# closed-form / non-network models (their fit is a solver, not a float32 master-weight step)
NOT_NETWORKS = {'linear', 'polynomial'}


def _networks():
  return [n for n in MODELS.names() if n not in NOT_NETWORKS and MODELS.meta(n).get('example_input_shape')]


@pytest.mark.parametrize('name', _networks())
def test_network_computes_in_bfloat16(name):
  shape = tuple(MODELS.meta(name)['example_input_shape'])
  model = build_model(ml_collections.ConfigDict({'name': name}))
  variables = abstract_variables(model, shape)
  x = jax.ShapeDtypeStruct((2, *shape), jnp.bfloat16)
  apply16 = lambda v, x: model.apply({**v, 'params': cast_floating(v['params'], jnp.bfloat16)}, x, train=False)
  out = jax.eval_shape(apply16, variables, x)
  assert {str(o.dtype) for o in jax.tree.leaves(out)} == {'bfloat16'}


def test_avg_pool_keeps_the_input_dtype_and_flax_values():
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jaxdl.nn import pooling  # pylint: disable=g-import-not-at-top
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 5, 5, 3)), jnp.float32)
  for include in (True, False):
    ref = nn.avg_pool(x, (3, 3), (2, 2), 'SAME', count_include_pad=include)
    np.testing.assert_array_equal(pooling.avg_pool(x, (3, 3), (2, 2), 'SAME', count_include_pad=include), ref)
    y16 = pooling.avg_pool(x.astype(jnp.bfloat16), (3, 3), (2, 2), 'SAME', count_include_pad=include)
    assert y16.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y16, np.float32), ref, rtol=2e-2, atol=2e-2)
