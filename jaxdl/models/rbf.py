"""Radial basis function network (Broomhead & Lowe 1988; seed 000 "RBF networks").

φ(x) = [1, exp(−‖x − μ_j‖² / 2σ_j²)]_j and y = wᵀφ(x): identity output for regression, logits for classification.
Centres μ and widths σ are parameters, so the three phases of the course are all plain training:
(1) place centres by k-means++ (`init_from_data`), (2) fix μ, σ and fit w (`optimizer.freeze`), (3) fine-tune
everything by gradient (∇_μ L, ∇_σ L, ∇_w L).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxdl.nn import cluster
from jaxdl.nn.precision import as_float
from jaxdl.registry import MODELS


def rbf_features(x, centres, log_width):
  """exp(−‖x − μ_j‖² / 2σ_j²), σ_j = exp(log_width_j); x (N, d) -> (N, K)."""
  d2 = cluster.sq_distances(x, centres)
  return jnp.exp(-d2 / (2.0 * jnp.exp(2.0 * log_width))[None, :])


@MODELS.register('rbf_network', example_input_shape=(1,), init_from_data=True,
                 description='Gaussian RBF units + linear output; centres by k-means++')
class RBFNetwork(nn.Module):
  num_centers: int = 10
  num_outputs: int = 1
  width: float = 0.0              # initial σ for every unit; 0: d_max / √(2K) after k-means (Haykin's rule)

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    x = as_float(x.reshape((x.shape[0], -1)))
    centres = self.param('centers', nn.initializers.uniform(1.0), (self.num_centers, x.shape[1]))
    log_width = self.param('log_width', nn.initializers.constant(jnp.log(self.width or 1.0)), (self.num_centers,))
    phi = rbf_features(x, centres, log_width)
    return nn.Dense(self.num_outputs, name='out')(phi)

  def init_from_data(self, params, key, inputs):
    """Phase 1: centres by k-means++ on the training inputs; widths σ = d_max/√(2K) unless `width` is given."""
    x = inputs.reshape((inputs.shape[0], -1)).astype(jnp.float32)
    k = self.num_centers
    centres = cluster.kmeans(key, x, k) if k < x.shape[0] else x[:k]
    if self.width:
      width = jnp.full((k,), self.width)
    else:
      d_max = jnp.sqrt(jnp.max(cluster.sq_distances(centres, centres)))
      width = jnp.full((k,), jnp.maximum(d_max / jnp.sqrt(2.0 * k), 1e-3))
    params = jax.tree.map(lambda v: v, params)
    params['centers'] = centres
    params['log_width'] = jnp.log(width)
    return params
