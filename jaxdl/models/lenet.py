"""LeNet-5 as published: LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to document
recognition", §II-B (seed 000 "Convolutional neural networks"; claim C6).

  layer  what                                                        output      params
  C1     6 maps, 5×5 conv                                             28×28×6        156 = 6·(25 + 1)
  S2     2×2 sum × trainable coefficient + trainable bias, per map    14×14×6         12 = 6·2
  C3     16 maps, 5×5 conv, SPARSE: Table I, 60 (S2 map, C3 map) pairs 10×10×16    1,516 = 60·25 + 16
  S4     as S2                                                          5×5×16        32 = 16·2
  C5     120 maps, 5×5 conv (fully connected to S4)                     1×1×120   48,120 = 120·(400 + 1)
  F6     84 units                                                        84       10,164 = 84·(120 + 1)
  output Euclidean RBF: y_i = Σ_j (x_j − w_ij)²                           10     (84·10 = 840 centres, FIXED)
                                                                                  ------
                                                                                  60,000 trainable

C1…F6 are each followed by the scaled tanh f(a) = 1.7159·tanh(2a/3) (Appendix A; `activations.lecun_tanh`).
The RBF centres are the paper's "stylized image of the corresponding character class drawn on a 7×12 bitmap" with
entries ±1, chosen by hand and kept fixed: they are NOT parameters, which is why the course's per-layer table (and
the ≈60K of C6) ends at F6 and sums to exactly 60,000. Here they live in the non-trainable collection 'constants'
(`jaxdl summary lenet5` prints "+ 840 non-trainable values"); `rbf_centres='learned'` makes them parameters
(60,840 in all), 'random' uses fixed random ±1 codes (for more than 10 classes).

The output is the logits −y_i (a smaller distance is a likelier class), so softmax cross-entropy is the paper's
MAP-like criterion E = y_D + log(e^{−j} + Σ_i e^{−y_i}) without the constant-j "rubbish class" term. `output='dense'`
replaces the RBF layer by an ordinary Dense + softmax head.

C3 is the one convolution here not built with `jaxdl.nn.conv.Conv`: a Conv owns a dense (5, 5, 6, 16) kernel (2,416
params), so C3 keeps only its 60 connection kernels (5, 5, 60) and scatters them into a zero kernel before a plain
`lax` convolution — the gradient reaches exactly the 60 kernels and the parameter count is the paper's.
Weights are initialised as in the paper: uniform in ±2.4/F_i, F_i the unit's fan-in; biases zero.
The input is 32×32×1; smaller images (MNIST's 28×28) are centred in a 32×32 field with zeros (`pad_input`),
as the paper does with MNIST.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxdl.nn.activations import lecun_tanh
from jaxdl.errors import UserError
from jaxdl.nn.conv import Conv
from jaxdl.nn.precision import as_float
from jaxdl.registry import MODELS

# Table I of the paper: row = S2 map, column = C3 map, X = connected.
C3_TABLE_ROWS = (
    'X...XXX..XXXX.XX',
    'XX...XXX..XXXX.X',
    'XXX...XXX..X.XXX',
    '.XXX..XXXX..X.XX',
    '..XXX..XXXX.XX.X',
    '...XXX..XXXX.XXX',
)
C3_TABLE = np.array([[c == 'X' for c in row] for row in C3_TABLE_ROWS])            # (6, 16) bool
C3_CONNECTIONS = tuple((int(i), int(o)) for o in range(16) for i in range(6) if C3_TABLE[i, o])   # 60, by C3 map

# The RBF centres: the digits 0–9 drawn on 7 (wide) × 12 (high) bitmaps, '#' = +1, '.' = −1 (paper Fig. 3 style).
_DIGITS = (
    ('.......', '..###..', '.#...#.', '#.....#', '#.....#', '#.....#',
     '#.....#', '#.....#', '#.....#', '.#...#.', '..###..', '.......'),
    ('.......', '...#...', '..##...', '.#.#...', '...#...', '...#...',
     '...#...', '...#...', '...#...', '...#...', '.#####.', '.......'),
    ('.......', '..###..', '.#...#.', '#.....#', '......#', '.....#.',
     '....#..', '...#...', '..#....', '.#.....', '#######', '.......'),
    ('.......', '.#####.', '#.....#', '......#', '......#', '..####.',
     '......#', '......#', '......#', '#.....#', '.#####.', '.......'),
    ('.......', '.....#.', '....##.', '...#.#.', '..#..#.', '.#...#.',
     '#....#.', '#######', '.....#.', '.....#.', '.....#.', '.......'),
    ('.......', '#######', '#......', '#......', '######.', '......#',
     '......#', '......#', '......#', '#.....#', '.#####.', '.......'),
    ('.......', '..####.', '.#.....', '#......', '#......', '######.',
     '#.....#', '#.....#', '#.....#', '#.....#', '.#####.', '.......'),
    ('.......', '#######', '......#', '.....#.', '....#..', '...#...',
     '...#...', '..#....', '..#....', '..#....', '..#....', '.......'),
    ('.......', '.#####.', '#.....#', '#.....#', '#.....#', '.#####.',
     '#.....#', '#.....#', '#.....#', '#.....#', '.#####.', '.......'),
    ('.......', '.#####.', '#.....#', '#.....#', '#.....#', '#.....#',
     '.######', '......#', '......#', '.....#.', '.####..', '.......'),
)
DIGIT_BITMAPS = np.array([[[1.0 if c == '#' else -1.0 for c in row] for row in d] for d in _DIGITS],
                         np.float32)                                                    # (10, 12, 7)

RBF_CENTRES = ('bitmap', 'random', 'learned')
OUTPUTS = ('rbf', 'dense')


def lecun98_uniform(fan_in: float):
  """U(−2.4/F, 2.4/F), the paper's initialisation (F = the unit's fan-in)."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -2.4 / fan_in, 2.4 / fan_in)
  return init


def rbf_codes(kind: str, n: int) -> np.ndarray:
  """(n, 84) ±1 centres: the digit bitmaps (n ≤ 10) or fixed random codes."""
  if kind == 'bitmap':
    return DIGIT_BITMAPS[:n].reshape(n, 84)
  return np.where(np.random.default_rng(1998).random((n, 84)) < 0.5, -1.0, 1.0).astype(np.float32)


class Subsampling(nn.Module):
  """S2/S4: per map, (sum of a 2×2 block) × coefficient + bias (2 parameters per map), then the scaled tanh."""

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    coef = self.param('coef', lecun98_uniform(4.0), (c,), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (c,), jnp.float32)
    s = nn.avg_pool(x, (2, 2), strides=(2, 2), padding='VALID') * 4.0
    return lecun_tanh(s * coef + bias)


class ConnectionTableConv(nn.Module):
  """A 5×5 VALID convolution in which output map o sees input map i only if `table[i, o]` (C3, Table I).

  Parameters: one 5×5 kernel per connection, 'kernel' (5, 5, #connections), and one bias per output map.
  """
  table: tuple[tuple[bool, ...], ...]
  kernel_size: int = 5

  @nn.compact
  def __call__(self, x):
    table = np.asarray(self.table, bool)
    cin, cout = table.shape
    ins, outs = np.nonzero(table.T)[1], np.nonzero(table.T)[0]        # connections grouped by output map
    k = self.kernel_size
    fan_in = np.asarray([k * k * table[:, o].sum() for o in outs], np.float32)

    def init(key, shape, dtype=jnp.float32):
      return jax.random.uniform(key, shape, dtype, -1.0, 1.0) * jnp.asarray(2.4 / fan_in, dtype)

    kernel = self.param('kernel', init, (k, k, len(ins)), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (cout,), jnp.float32)
    dense = jnp.zeros((k, k, cin, cout), kernel.dtype).at[:, :, ins, outs].set(kernel)
    y = jax.lax.conv_general_dilated(x, dense.astype(x.dtype), (1, 1), 'VALID',
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return y + bias


class RBFOutput(nn.Module):
  """y_i = Σ_j (x_j − w_ij)²; returns the logits −y. Centres fixed ('constants') unless `learned`."""
  num_outputs: int
  centres: str = 'bitmap'

  @nn.compact
  def __call__(self, x):
    if self.centres == 'learned':
      w = self.param('centres', lambda *_: jnp.asarray(rbf_codes('bitmap' if self.num_outputs <= 10 else 'random',
                                                                self.num_outputs)))
    else:
      w = self.variable('constants', 'centres', lambda: jnp.asarray(rbf_codes(self.centres, self.num_outputs))).value
    d = jnp.sum(jnp.square(x[:, None, :] - w[None].astype(x.dtype)), axis=-1)
    return -d


@MODELS.register('lenet5', example_input_shape=(32, 32, 1),
                 description='LeNet-5 (LeCun et al. 1998): sparse C3, trainable subsampling, RBF output; 60,000 params')
class LeNet5(nn.Module):
  """The original LeNet-5 (see the module docstring). Layers C1, S2, C3, S4, C5, F6, output.

  num_outputs: classes (10 digits). output: 'rbf' (the paper) | 'dense'. rbf_centres: 'bitmap' (fixed ±1 digit
  bitmaps, the paper; at most 10 classes) | 'random' (fixed ±1 codes) | 'learned' (trainable, +84·num_outputs).
  pad_input: centre inputs smaller than 32×32 in a 32×32 field.
  """
  num_outputs: int = 10
  output: str = 'rbf'
  rbf_centres: str = 'bitmap'
  pad_input: bool = True

  def __post_init__(self):
    super().__post_init__()
    if self.output not in OUTPUTS:
      raise UserError(f'model.output={self.output!r}', 'one of: ' + ', '.join(OUTPUTS), 'fix config.model.output')
    if self.rbf_centres not in RBF_CENTRES:
      raise UserError(f'model.rbf_centres={self.rbf_centres!r}', 'one of: ' + ', '.join(RBF_CENTRES),
                      'fix config.model.rbf_centres')
    if self.output == 'rbf' and self.rbf_centres == 'bitmap' and self.num_outputs > 10:
      raise UserError(f'rbf_centres=bitmap with num_outputs={self.num_outputs}', 'at most 10 classes (digits 0–9)',
                      "use model.rbf_centres='random' or 'learned', or model.output='dense'")

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train                                                        # no dropout or batch statistics
    x = as_float(x)
    if x.ndim == 3:
      x = x[..., None]
    h, w = x.shape[1:3]
    if self.pad_input and (h < 32 or w < 32):
      ph, pw = max(32 - h, 0), max(32 - w, 0)
      x = jnp.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    cin = x.shape[-1]
    x = lecun_tanh(Conv(6, (5, 5), padding='VALID', kernel_init=lecun98_uniform(25 * cin),
                        bias_init=nn.initializers.zeros, name='C1')(x))
    x = Subsampling(name='S2')(x)
    if x.shape[-1] != 6:
      raise ValueError('LeNet-5 C3 expects the 6 maps of S2')
    x = lecun_tanh(ConnectionTableConv(tuple(map(tuple, C3_TABLE.tolist())), name='C3')(x))
    x = Subsampling(name='S4')(x)
    x = lecun_tanh(Conv(120, (5, 5), padding='VALID', kernel_init=lecun98_uniform(25 * 16),
                        bias_init=nn.initializers.zeros, name='C5')(x))
    x = x.reshape((x.shape[0], -1))                                  # 1×1×120 for a 32×32 input
    x = lecun_tanh(nn.Dense(84, kernel_init=lecun98_uniform(x.shape[-1]), name='F6')(x))
    if self.output == 'dense':
      return nn.Dense(self.num_outputs, kernel_init=lecun98_uniform(84), name='output')(x)
    return RBFOutput(self.num_outputs, self.rbf_centres, name='output')(x)
