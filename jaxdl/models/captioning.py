"""Image captioning (course chapter 4, seed 000 "Generating text descriptions from images"): a CNN encoder and an
LSTM decoder that generates the caption word by word.

`show_and_tell` (Vinyals et al. 2015): the image embedding x_{−1} = W_I CNN(I) is the LSTM's FIRST input, then the
word embeddings x_t = W_e S_t (Vinyals eq. 10-12; "feeding the image at every step did not help"):

  h_{−1} = LSTM(x_{−1}, 0),   h_t = LSTM(W_e S_t, h_{t−1}),   p_{t+1} = softmax(W h_t)        t = 0 … N−1, S_0 = BOS

so the prediction for the word at position t+1 sees the image and the words up to t. CNN(I) is the encoder's last
feature map, flattened (`image_features='flatten'`, small images) or averaged over positions ('mean': GoogLeNet's
pool5, 1,024-d, as in the paper). `image_batch_norm` (default on) batch-normalises x_{−1} (Ioffe & Szegedy 2015; the
2016 show-and-tell adds batch normalisation too): trained from scratch on captioned_shapes without it, x_{−1} is
small and nearly the same for every image, and the LSTM learns only the language model (measured: train accuracy
stays at 0.60 for 1,000 steps; with it, 0.83 after 400). `SHOW_AND_TELL_PAPER` is the notes' preset: GoogLeNet,
embedding 512, LSTM 512, no BN.

`show_attend_tell` (Xu et al. 2015, soft attention): the feature map is a set of L annotation vectors a_i (each cell's
features, plus its normalised (row, col) with `coordinates=True`, CoordConv-style, so a context vector can say where
it looked); at each step (Xu eq. 4-7, 13)

  α_t = softmax_i(vᵀ tanh(W_h h_{t−1} + W_a a_i))     additive attention (jaxdl.nn.attention.AdditiveAttention)
  ẑ_t = β_t Σ_i α_ti a_i,  β_t = σ(W_β h_{t−1})        (the gate β: `gating`)
  h_t = LSTM([E y_{t−1}; ẑ_t], h_{t−1}),   p(y_t) ∝ exp(L_o(E y_{t−1} + L_h h_t + L_z ẑ_t))   (deep output)
  h_0, c_0 = tanh(f_init(mean_i a_i))

and the model returns {'logits', 'aux_loss', 'attention'}: aux_loss is the doubly stochastic penalty
λ Σ_i (1 − Σ_t α_ti)² over the caption's valid steps (Xu eq. 14, jaxdl.nn.attention.doubly_stochastic_penalty),
which jaxdl.losses adds to the loss (`with_aux_loss`); `attention_weights(...)` gives the teacher-forced α [B, T, L]
and `feature_grid(...)` the map's (H', W').

The encoder is a jaxdl zoo CNN used as a trunk (`feature_map=True`): 'simple_cnn' (3×3 SAME convs of
`encoder_channels`, each followed by ReLU and a 2×2 max-pool) or 'googlenet'; its parameters live under 'encoder', so
`freeze_encoder=True` with `optimizer.freeze=('encoder',)` trains the decoder on a frozen CNN (Vinyals: frozen first,
fine-tuned later): the CNN runs in inference mode (its BN uses, and keeps, the running statistics it was trained
with), no gradient is computed through it (faster), and the optimiser leaves its weights alone (no weight decay
either); `train.init_from` + `init_from_exclude` starts it from a trained run.

Both declare `batch_keys = ('decoder_inputs',)` (BOS + caption; PAD = 0 marks padding) and generate by the decoding
protocol the seq2seq models use (jaxdl.models.decoding.Decoder: `decode_start` from the decoder state after reading
the image; `generate` greedy or beam search, `beam` n-best), so the trainer's generating evaluation (BLEU, exact
match) works unchanged.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxdl.errors import UserError
from jaxdl.models.cnn import SimpleCNN
from jaxdl.models.inception import GoogLeNet
from jaxdl.models.decoding import Decoder, bound_step_fn
from jaxdl.models.seq2seq import symmetric_uniform
from jaxdl.nn import attention as attn_lib
from jaxdl.nn import recurrent
from jaxdl.nn.dense import Dense
from jaxdl.nn.precision import as_float
from jaxdl.registry import MODELS
from jaxdl.text.vocab import BOS, PAD

Array = Any
ENCODERS = ('simple_cnn', 'googlenet')
IMAGE_FEATURES = ('flatten', 'mean')

# The notes' show-and-tell (Vinyals et al. 2015): GoogLeNet (pool5, 1,024-d), embedding 512, LSTM 512, on 224×224
# images; a 10,000-word vocabulary (as Xu et al. 2015).
SHOW_AND_TELL_PAPER = dict(encoder='googlenet', image_features='mean', image_batch_norm=False, embed_dim=512,
                           hidden_size=512, num_outputs=10000)


_EMBED_INIT = symmetric_uniform(0.1)     # word vectors U(−0.1, 0.1), on the scale of the image embedding


def _encoder(name: str, channels: Sequence[int], model: str, batch_norm: bool = False) -> nn.Module:
  if name == 'simple_cnn':
    return SimpleCNN(channels=tuple(channels), padding='SAME', pool_every=1, dense=(), batch_norm=batch_norm,
                     name='encoder')
  if name == 'googlenet':
    return GoogLeNet(name='encoder')
  raise UserError(f'config.model.encoder={name!r} for {model}', f'one of {ENCODERS}', 'fix --config.model.encoder')


def _decoder_inputs(decoder_inputs, batch_size: int):
  if decoder_inputs is None:                    # one BOS step: builds every parameter (init, `jaxdl summary`)
    return jnp.full((batch_size, 1), BOS, jnp.int32)
  return decoder_inputs.reshape(batch_size, -1).astype(jnp.int32)


def _features(cnn: nn.Module, images, train: bool, frozen: bool):
  """The encoder's feature map; `frozen`: the CNN runs in inference mode (BN with its running statistics, which
  stay as they are; no dropout) and no gradient flows into it, so the backward pass stops at the features."""
  if frozen:
    return jax.lax.stop_gradient(cnn(as_float(images), train=False, feature_map=True))
  return cnn(as_float(images), train=train, feature_map=True)


@MODELS.register('show_and_tell', example_input_shape=(16, 16, 3), example_target_shape=(5,),
                 description='image captioning (Vinyals et al. 2015): CNN embedding as the LSTM\'s first input; '
                 'greedy / beam-search generate')
class ShowAndTell(Decoder, nn.Module):
  """Images [B, H, W, C] (+ decoder_inputs [B, T]) -> next-word logits [B, T, num_outputs] (module docstring)."""
  num_outputs: int = 32
  encoder: str = 'simple_cnn'
  encoder_channels: Sequence[int] = (32, 64)
  encoder_batch_norm: bool = False         # simple_cnn: BN after each conv (batch statistics in 'batch_stats')
  image_features: str = 'flatten'
  freeze_encoder: bool = False             # the CNN in inference mode, no gradient through it (module docstring)
  image_batch_norm: bool = True            # BN on W_I CNN(I) (see the module docstring)
  embed_dim: int = 64
  hidden_size: int = 128
  dropout: float = 0.0                     # on the LSTM outputs before the softmax
  max_decode_length: int = 24              # generate's limit when config.decode.max_length = 0

  batch_keys = ('decoder_inputs',)

  def __post_init__(self):
    super().__post_init__()
    if self.encoder not in ENCODERS:
      raise UserError(f'config.model.encoder={self.encoder!r} for show_and_tell', f'one of {ENCODERS}',
                      'fix --config.model.encoder')
    if self.image_features not in IMAGE_FEATURES:
      raise UserError(f'config.model.image_features={self.image_features!r}', f'one of {IMAGE_FEATURES}',
                      'fix --config.model.image_features')

  def setup(self):
    self.cnn = _encoder(self.encoder, self.encoder_channels, 'show_and_tell', self.encoder_batch_norm)
    self.image_embed = Dense(self.embed_dim, name='image_embed')             # W_I
    if self.image_batch_norm:
      self.image_bn = nn.BatchNorm(momentum=0.9, name='image_bn')
    self.embed = nn.Embed(self.num_outputs, self.embed_dim, embedding_init=_EMBED_INIT, name='embed')    # W_e
    self.lstm = recurrent.LSTMCell(self.hidden_size, two_bias=False, forget_bias=1.0, name='lstm')
    self.drop = nn.Dropout(self.dropout)
    self.head = Dense(self.num_outputs, name='head')

  def image_embedding(self, images, train: bool = False):
    """x_{−1} = W_I CNN(I) [B, embed_dim]."""
    f = _features(self.cnn, images, train, self.freeze_encoder)
    f = f.reshape(f.shape[0], -1) if self.image_features == 'flatten' else jnp.mean(f, axis=(1, 2))
    x = self.image_embed(f)
    return self.image_bn(x, use_running_average=not train) if self.image_batch_norm else x

  def __call__(self, inputs, decoder_inputs=None, train: bool = False):
    x_img = self.image_embedding(inputs, train)
    words = self.embed(_decoder_inputs(decoder_inputs, inputs.shape[0]))
    xs = jnp.concatenate([x_img[:, None, :].astype(words.dtype), words], axis=1)    # x_{−1}, x_0 … x_{N−1}
    hs, _ = self.lstm.run(xs, train=train)
    h = self.drop(hs[:, 1:], deterministic=not train)                               # h_0 … h_{N−1}
    return self.head(h)

  def _step(self, tokens, state):
    carry, h = self.lstm(state['carry'], self.embed(tokens))
    return jax.nn.log_softmax(self.head(h).astype(jnp.float32)), {'carry': carry}

  def decode_start(self, inputs, inputs_paddings=None, max_len: int = 0):
    """The decoding protocol's hook (jaxdl.models.decoding): (step_fn, the LSTM carry after reading the image)."""
    del inputs_paddings, max_len
    carry, _ = self.lstm(None, self.image_embedding(inputs))
    return bound_step_fn(self, ShowAndTell._step), {'carry': carry}



class AttendStep(nn.Module):
  """One show-attend-tell decoder step (Xu et al. eq. 4-7): carry (h, c), word embedding [B, E], annotations
  [B, L, D] -> (carry, (logits [B, V], α [B, L]))."""
  hidden_size: int
  attention_features: int
  embed_dim: int
  num_outputs: int
  gating: bool = True

  @nn.compact
  def __call__(self, carry, word, memory):
    h = carry[0]
    context, alpha = attn_lib.AdditiveAttention(self.attention_features, name='attention')(h, memory)  # α_t(h_{t−1})
    if self.gating:
      context = jax.nn.sigmoid(Dense(memory.shape[-1], name='gate')(h)) * context                    # β_t
    carry, h = recurrent.LSTMCell(self.hidden_size, two_bias=False, name='lstm')(
        carry, jnp.concatenate([word, context.astype(word.dtype)], -1))
    out = word + Dense(self.embed_dim, name='out_h')(h) + Dense(self.embed_dim, name='out_z')(context)
    return carry, (Dense(self.num_outputs, name='out')(out), alpha)                                     # deep output


def grid_coordinates(height: int, width: int):
  """[H·W, 2] normalised (row, col) in [−1, 1] of each cell, row-major (the annotations' order)."""
  r = jnp.linspace(-1.0, 1.0, height) if height > 1 else jnp.zeros(1)
  c = jnp.linspace(-1.0, 1.0, width) if width > 1 else jnp.zeros(1)
  return jnp.stack(jnp.meshgrid(r, c, indexing='ij'), -1).reshape(-1, 2)


@MODELS.register('show_attend_tell', example_input_shape=(16, 16, 3), example_target_shape=(5,),
                 description='image captioning with soft attention over the conv map (Xu et al. 2015) and the '
                 'doubly stochastic penalty; greedy / beam-search generate')
class ShowAttendTell(Decoder, nn.Module):
  """Images [B, H, W, C] (+ decoder_inputs [B, T]) -> {'logits' [B, T, V], 'aux_loss' [B], 'attention' [B, T, L]}."""
  num_outputs: int = 32
  encoder: str = 'simple_cnn'
  encoder_channels: Sequence[int] = (32, 64)
  coordinates: bool = True                 # append each cell's (row, col) to its annotation vector
  encoder_batch_norm: bool = False         # simple_cnn: BN after each conv (batch statistics in 'batch_stats')
  freeze_encoder: bool = False             # the CNN in inference mode, no gradient through it (module docstring)
  embed_dim: int = 64
  hidden_size: int = 128
  attention_features: int = 64
  gating: bool = True
  penalty: float = 1.0                     # λ of the doubly stochastic penalty (Xu eq. 14); 0: none
  max_decode_length: int = 24

  batch_keys = ('decoder_inputs',)

  def __post_init__(self):
    super().__post_init__()
    if self.encoder not in ENCODERS:
      raise UserError(f'config.model.encoder={self.encoder!r} for show_attend_tell', f'one of {ENCODERS}',
                      'fix --config.model.encoder')
    if not (isinstance(self.penalty, (int, float)) and self.penalty >= 0):
      raise UserError(f'config.model.penalty={self.penalty!r}', 'a number >= 0 (λ of Xu et al. eq. 14)',
                      'fix --config.model.penalty')

  def setup(self):
    self.cnn = _encoder(self.encoder, self.encoder_channels, 'show_attend_tell', self.encoder_batch_norm)
    self.embed = nn.Embed(self.num_outputs, self.embed_dim, name='embed')
    self.init_h = Dense(self.hidden_size, name='init_h')
    self.init_c = Dense(self.hidden_size, name='init_c')
    scan = nn.scan(AttendStep, variable_broadcast='params', split_rngs={'params': False}, in_axes=(1, nn.broadcast),
                   out_axes=1)
    self.decoder = scan(self.hidden_size, self.attention_features, self.embed_dim, self.num_outputs, self.gating,
                        name='decoder')

  def annotations(self, images, train: bool = False):
    """(a [B, L, D], the map's (H', W')): the encoder's cells, row-major, (+ normalised (row, col))."""
    f = _features(self.cnn, images, train, self.freeze_encoder)
    b, hh, ww, d = f.shape
    a = f.reshape(b, hh * ww, d)
    if self.coordinates:
      a = jnp.concatenate([a, jnp.broadcast_to(grid_coordinates(hh, ww).astype(a.dtype), (b, hh * ww, 2))], -1)
    return a, (hh, ww)

  def _init_carry(self, a):
    mean = jnp.mean(a, axis=1)
    return jnp.tanh(self.init_h(mean)), jnp.tanh(self.init_c(mean))      # Xu et al. §3.1.2

  def _run(self, inputs, decoder_inputs, train):
    a, _ = self.annotations(inputs, train)
    ids = _decoder_inputs(decoder_inputs, inputs.shape[0])
    _, (logits, alpha) = self.decoder(self._init_carry(a), self.embed(ids), a)
    return logits, alpha, ids

  def __call__(self, inputs, decoder_inputs=None, train: bool = False):
    logits, alpha, ids = self._run(inputs, decoder_inputs, train)
    aux = attn_lib.doubly_stochastic_penalty(alpha, step_mask=ids != PAD, lam=self.penalty)
    return {'logits': logits, 'aux_loss': aux, 'attention': alpha}

  def attention_weights(self, inputs, decoder_inputs):
    """Teacher-forced α [B, T, L]: α[b, t] is the map when predicting targets[b, t] (cells row-major)."""
    return self._run(inputs, decoder_inputs, False)[1]

  def feature_grid(self, inputs):
    """The attention map's (H', W') for images shaped like `inputs`."""
    return self.annotations(inputs)[1]

  def _step(self, tokens, state):
    carry, (logits, _) = self.decoder(state['carry'], self.embed(tokens)[:, None], state['memory'])
    return jax.nn.log_softmax(logits[:, 0].astype(jnp.float32)), {**state, 'carry': carry}

  def decode_start(self, inputs, inputs_paddings=None, max_len: int = 0):
    """The decoding protocol's hook (jaxdl.models.decoding): (step_fn, the initial carry and the annotations)."""
    del inputs_paddings, max_len
    a, _ = self.annotations(inputs)
    return bound_step_fn(self, ShowAttendTell._step), {'carry': self._init_carry(a), 'memory': a}

