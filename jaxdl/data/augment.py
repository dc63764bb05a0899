"""Data augmentation: pure, seeded, jit-able batch operations on NHWC float images, and a pipeline built by name.

Seed 000 (DATASET AUGMENTATION: "colour jittering, translations, reflections, rotations, PCA"; the CIFAR-100
example's HFlip, Trans(5pix), Scale(0.8, 1.2); AlexNet's random crops, reflections and PCA lighting), seed 002
(course 3, 4.1: rotation, flipping and cropping are the most used), seed 004 (VIII.1: brightness/contrast, random
crops, flips, rotations). A transform must change the target predictably (seed 000: a flipped 6 is a 9): choose the
ops for the task.

Every random op has the form `op(rng, images, **kwargs) -> images` on a batch `images` (B, H, W, C), float. Its
parameters are drawn per example from `rng` by a public `sample_*` function, and applied by a deterministic
function of the parameters (`crop`, `shift`, `affine`, `adjust_*`, `lighting`, `erase`, `mix`), so an op is a
pure function of (rng, images): the same key gives the same output, jit and vmap apply, shapes are kept.
Ops with `p < 1` apply to each example with probability p (a coin `bernoulli(fold_in(rng, 1), p)`).

  flip           x[:, ::-1] with probability p (reflection about the vertical axis)
  crop           pad by `padding` (zero | reflect | edge), take an H×W window at offsets (oy, ox) ~ U{0..2·padding}²
  translate      x′(i, j) = x(i − dy, j − dx), (dy, dx) ~ U{−m..m}², the uncovered border filled by `mode`
  rotate         affine warp by θ ~ U(−d, d) degrees about the image centre (positive θ: counter-clockwise)
  scale          affine zoom by s ~ U(lo, hi) about the centre (s > 1 enlarges the content)
  affine         rotation, scale and a sub-pixel translation together
  color_jitter   brightness x·b, contrast m + c(x − m), saturation g + s(x − g), hue: a rotation of YIQ's (I, Q) plane
  pca_lighting   x + Σ_i α_i λ_i p_i, α_i ~ N(0, σ²), σ = 0.1 (Krizhevsky et al. 2012, §4.1)
  cutout         a size×size square, centred at a uniform pixel, set to 0 (DeVries & Taylor 2017)
  mixup          x̃ = λx_i + (1 − λ)x_j, ỹ = λy_i + (1 − λ)y_j, λ ~ Beta(α, α), j = π(i) (Zhang et al. 2018)

The affine ops resample with bilinear interpolation (jax.scipy.ndimage.map_coordinates, order 1): the output
pixel p takes the input at M⁻¹(p − c − t) + c, c = ((H − 1)/2, (W − 1)/2) in (row, column) coordinates, where
M = s·R(θ). Pixels that map outside the image take `mode`: zero (0), reflect (d c b | a b c d | c b a, numpy's
'reflect'), edge (the nearest border pixel).

The pipeline (the trainer's interface):

  augment_fn = build_augment([('flip', {}), ('crop', {'padding': 4}), ('mixup', {'alpha': 0.2, 'num_classes': 10})])
  batch = augment_fn(rng, batch)     # inside the jitted train step, training batches only

`augment_fn(rng, batch) -> batch`: `batch` is a dict with 'inputs' (B, H, W, C) and 'targets'; other keys pass
through unchanged. Op k uses the key `fold_in(rng, k)`. Inputs of an integer dtype become float32 first. All ops
but mixup touch 'inputs' only. mixup turns integer targets (B,) into soft targets (B, num_classes) (one-hot, then
mixed); soft targets (B, K) are mixed as they are, so the loss must accept (B, K) probability targets. Each item
of the list is a name, a (name, kwargs) pair, or a mapping {'name': ..., **kwargs} (a config's list); an unknown
name or keyword, or a bad value, raises jaxdl.errors.UserError when the pipeline is built.
"""
from __future__ import annotations

import dataclasses
import inspect
import numbers
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl.errors import UserError

MODES = ('zero', 'reflect', 'edge')
_PAD_MODE = {'zero': 'constant', 'reflect': 'reflect', 'edge': 'edge'}
_MAP_MODE = {'zero': 'constant', 'reflect': 'mirror', 'edge': 'nearest'}   # scipy's 'mirror' is numpy's 'reflect'
_COIN = 1

# ITU-R BT.601 luma (as torchvision's grayscale) and the YIQ transform whose (I, Q) plane hue rotates.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float64)
_YIQ_INV = np.linalg.inv(_YIQ)

# fb.resnet.torch's ImageNet RGB eigen-decomposition for pixels in [0, 1] (columns are the eigenvectors), the
# values most reimplementations of AlexNet's lighting noise use.
IMAGENET_EIGVALS = np.array([0.2175, 0.0188, 0.0045], np.float32)
IMAGENET_EIGVECS = np.array([[-0.5675, 0.7192, 0.4009],
                             [-0.5808, -0.0045, -0.8140],
                             [-0.5836, -0.6948, 0.4203]], np.float32)


# ------------------------------------------------------------------------------------------------ checks
def _bad(what: str, expected: str, op: str):
  return UserError(what, expected, f'fix the kwargs of augmentation {op!r}')


def _prob(p, op):
  if not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
    raise _bad(f'p={p!r}', 'a probability in [0, 1]', op)


def _nonneg(name, v, op, integer=False):
  kind = numbers.Integral if integer else numbers.Real
  if isinstance(v, bool) or not isinstance(v, kind) or v < 0:
    raise _bad(f'{name}={v!r}', f'a non-negative {"integer" if integer else "number"}', op)


def _mode(mode, op):
  if mode not in MODES:
    raise _bad(f'mode={mode!r}', 'one of: ' + ', '.join(MODES), op)


def _range(name, v, op, positive=False, symmetric=True):
  """A number d (meaning (−d, d), needs d ≥ 0) or a pair (lo, hi), lo ≤ hi -> (lo, hi)."""
  if isinstance(v, numbers.Real) and not isinstance(v, bool) and symmetric:
    if v < 0:
      raise _bad(f'{name}={v!r}', 'a number >= 0 or a pair (lo, hi)', op)
    return (-float(v), float(v))
  try:
    lo, hi = (float(a) for a in v)
  except (TypeError, ValueError):
    raise _bad(f'{name}={v!r}', ('a number >= 0 or ' if symmetric else '') + 'a pair (lo, hi)', op) from None
  if lo > hi or (positive and lo <= 0):
    raise _bad(f'{name}={v!r}', f'lo <= hi{" and lo > 0" if positive else ""}', op)
  return lo, hi


def _images(images, op):
  images = jnp.asarray(images)
  if images.ndim != 4:
    raise UserError(f'augmentation {op!r} got inputs of shape {tuple(images.shape)}', 'NHWC images (B, H, W, C)',
                    'reshape the inputs or drop image augmentation for this dataset')
  return images if jnp.issubdtype(images.dtype, jnp.floating) else images.astype(jnp.float32)


def _coin(rng, p, images, new):
  """new where a per-example coin with P(heads) = p says so, else images."""
  if p >= 1.0:
    return new
  heads = jax.random.bernoulli(jax.random.fold_in(rng, _COIN), p, (images.shape[0],))
  return jnp.where(heads[:, None, None, None], new, images)


def _uniform(rng, n, lo, hi, shape=()):
  return jax.random.uniform(rng, (n, *shape), jnp.float32, lo, hi)


# ------------------------------------------------------------------------------------------- reflections
def random_flip(rng, images, p: float = 0.5):
  """Horizontal reflection x′(i, j) = x(i, W − 1 − j) of each example with probability p."""
  _prob(p, 'flip')
  images = _images(images, 'flip')
  heads = jax.random.bernoulli(rng, p, (images.shape[0],))
  return jnp.where(heads[:, None, None, None], images[:, :, ::-1], images)


# ------------------------------------------------------------------------------------ crops and shifts
def pad(images, padding: int, mode: str = 'zero'):
  """(B, H, W, C) -> (B, H + 2·padding, W + 2·padding, C), the border filled by `mode`."""
  _mode(mode, 'crop')
  widths = ((0, 0), (padding, padding), (padding, padding), (0, 0))
  return jnp.pad(images, widths, mode=_PAD_MODE[mode])


def crop(images, offsets, padding: int, mode: str = 'zero'):
  """Window H×W of the padded images at per-example (row, column) offsets (B, 2), each in [0, 2·padding]."""
  b, h, w, c = images.shape
  padded = pad(images, padding, mode)
  offsets = jnp.asarray(offsets, jnp.int32)
  return jax.vmap(lambda x, o: jax.lax.dynamic_slice(x, (o[0], o[1], 0), (h, w, c)))(padded, offsets)


def sample_crop(rng, n: int, padding: int):
  """Offsets (n, 2) ~ U{0, ..., 2·padding}², independent per example and axis."""
  return jax.random.randint(rng, (n, 2), 0, 2 * padding + 1, jnp.int32)


def random_crop(rng, images, padding: int = 4, mode: str = 'zero', p: float = 1.0):
  """Pad by `padding` then crop back to H×W at offsets `sample_crop(rng, B, padding)` (AlexNet's random crops,
  at the same size: a random translation by up to `padding` pixels)."""
  _nonneg('padding', padding, 'crop', integer=True)
  _mode(mode, 'crop')
  _prob(p, 'crop')
  images = _images(images, 'crop')
  return _coin(rng, p, images, crop(images, sample_crop(rng, images.shape[0], padding), padding, mode))


def shift(images, shifts, mode: str = 'zero'):
  """Integer translation x′(i, j) = x(i − dy, j − dx) per example, shifts (B, 2) = (dy, dx); the uncovered border
  is filled by `mode` (with zero, np.roll with the wrapped part set to 0)."""
  b, h, w, _ = images.shape
  m = max(h, w)
  shifts = jnp.clip(jnp.asarray(shifts, jnp.int32), -m, m)
  return crop(images, m - shifts, m, mode)


def sample_translate(rng, n: int, max_shift: int):
  """Shifts (n, 2) = (dy, dx) ~ U{−max_shift, ..., max_shift}²."""
  return jax.random.randint(rng, (n, 2), -max_shift, max_shift + 1, jnp.int32)


def random_translate(rng, images, max_shift: int = 4, mode: str = 'zero', p: float = 1.0):
  """Integer translation by `sample_translate(rng, B, max_shift)` (seed 000's Trans(5pix) is max_shift=5)."""
  _nonneg('max_shift', max_shift, 'translate', integer=True)
  _mode(mode, 'translate')
  _prob(p, 'translate')
  images = _images(images, 'translate')
  return _coin(rng, p, images, shift(images, sample_translate(rng, images.shape[0], max_shift), mode))


# ------------------------------------------------------------------------------------------ affine warps
def affine(images, angle=None, scale=None, translation=None, mode: str = 'zero', order: int = 1):
  """Warps each image by M = s·R(θ) about its centre c, then translates by t; per example angle θ (B,) in degrees
  (counter-clockwise as displayed), scale s (B,), translation t (B, 2) in pixels (rows, columns).

  Output pixel p = (i, j) samples the input at q = R(−θ)(p − c − t)/s + c, i.e. with y = i − cy − ty,
  x = j − cx − tx: q = ((cos θ·y + sin θ·x)/s + cy, (−sin θ·y + cos θ·x)/s + cx), interpolated bilinearly
  (order 1; order 0 is nearest-neighbour). θ = 90 is np.rot90; integer t with θ = 0, s = 1 is `shift`.
  """
  _mode(mode, 'affine')
  b, h, w, _ = images.shape
  angle = jnp.zeros((b,), jnp.float32) if angle is None else jnp.broadcast_to(jnp.asarray(angle, jnp.float32), (b,))
  scale = jnp.ones((b,), jnp.float32) if scale is None else jnp.broadcast_to(jnp.asarray(scale, jnp.float32), (b,))
  translation = (jnp.zeros((b, 2), jnp.float32) if translation is None
                 else jnp.broadcast_to(jnp.asarray(translation, jnp.float32), (b, 2)))
  cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
  ii, jj = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing='ij')

  def one(img, theta, s, t):
    th = jnp.deg2rad(theta)
    cos, sin = jnp.cos(th), jnp.sin(th)
    y, x = ii - cy - t[0], jj - cx - t[1]
    qy = (cos * y + sin * x) / s + cy
    qx = (-sin * y + cos * x) / s + cx
    sample = lambda ch: jax.scipy.ndimage.map_coordinates(ch, [qy, qx], order=order, mode=_MAP_MODE[mode], cval=0.0)
    return jax.vmap(sample, in_axes=-1, out_axes=-1)(img)

  return jax.vmap(one)(images, angle, scale, translation).astype(images.dtype)


def sample_affine(rng, n: int, degrees=(0.0, 0.0), scale=(1.0, 1.0), translate: float = 0.0):
  """(angle (n,) ~ U(degrees), scale (n,) ~ U(scale), translation (n, 2) ~ U(−translate, translate)²)."""
  ka, ks, kt = jax.random.split(rng, 3)
  return (_uniform(ka, n, *degrees), _uniform(ks, n, *scale), _uniform(kt, n, -translate, translate, (2,)))


def random_affine(rng, images, degrees=0.0, scale=(1.0, 1.0), translate: float = 0.0, mode: str = 'zero',
                  p: float = 1.0):
  """Rotation θ ~ U(−degrees, degrees) (or U(lo, hi) for a pair), zoom s ~ U(scale), translation
  t ~ U(−translate, translate)² pixels, together: `affine(images, *sample_affine(rng, B, ...))`."""
  degrees = _range('degrees', degrees, 'affine')
  scale = _range('scale', scale, 'affine', positive=True, symmetric=False)
  _nonneg('translate', translate, 'affine')
  _mode(mode, 'affine')
  _prob(p, 'affine')
  images = _images(images, 'affine')
  params = sample_affine(rng, images.shape[0], degrees, scale, float(translate))
  return _coin(rng, p, images, affine(images, *params, mode=mode))


def random_rotate(rng, images, degrees=15.0, mode: str = 'zero', p: float = 1.0):
  """Rotation by θ ~ U(−degrees, degrees) (or U(lo, hi)) about the centre, bilinear: `random_affine` with only θ."""
  _range('degrees', degrees, 'rotate')
  return random_affine(rng, images, degrees=degrees, mode=mode, p=p)


def random_scale(rng, images, scale=(0.8, 1.2), mode: str = 'zero', p: float = 1.0):
  """Zoom by s ~ U(lo, hi) about the centre (seed 000's Scale(0.8, 1.2)): `random_affine` with only s."""
  _range('scale', scale, 'scale', positive=True, symmetric=False)
  return random_affine(rng, images, scale=scale, mode=mode, p=p)


# ------------------------------------------------------------------------------------------------ colour
def _gray(images):
  """Per-pixel luma (B, H, W, 1): 0.299 R + 0.587 G + 0.114 B; a one-channel image is its own."""
  c = images.shape[-1]
  if c == 1:
    return images
  if c != 3:
    raise UserError(f'colour jitter got images with {c} channels', '1 (grey) or 3 (RGB) channels',
                    'drop saturation/hue/contrast jitter for this dataset')
  return jnp.sum(images * jnp.asarray(LUMA, images.dtype), axis=-1, keepdims=True)


def _per_example(f, images):
  return jnp.asarray(f, images.dtype).reshape(-1, 1, 1, 1)


def adjust_brightness(images, factor):
  """x·b per example (torchvision's brightness; b = 0 is black)."""
  return images * _per_example(factor, images)


def adjust_contrast(images, factor):
  """m + c(x − m), m the image's mean luma, per example (c = 0 is uniform grey)."""
  m = jnp.mean(_gray(images), axis=(1, 2, 3), keepdims=True)
  return m + _per_example(factor, images) * (images - m)


def adjust_saturation(images, factor):
  """g + s(x − g), g the pixel's luma, per example (s = 0 is greyscale; a grey image does not change)."""
  g = _gray(images)
  return g + _per_example(factor, images) * (images - g)


def adjust_hue(images, shift):
  """Rotates the chroma of RGB pixels by 2π·h (h in turns, per example) in YIQ space: Y = luma is kept, (I, Q) is
  turned by the angle (an approximation of an HSV hue shift, exact on the YIQ hue circle). Grey images: identity."""
  if images.shape[-1] == 1:
    return images
  _gray(images)    # checks the channels
  th = 2.0 * jnp.pi * jnp.asarray(shift, jnp.float32).reshape(-1)
  cos, sin = jnp.cos(th), jnp.sin(th)
  one, zero = jnp.ones_like(th), jnp.zeros_like(th)
  rot = jnp.stack([jnp.stack([one, zero, zero], -1), jnp.stack([zero, cos, -sin], -1),
                   jnp.stack([zero, sin, cos], -1)], -2)                            # (B, 3, 3) on (Y, I, Q)
  m = jnp.asarray(_YIQ_INV, jnp.float32) @ rot @ jnp.asarray(_YIQ, jnp.float32)    # (B, 3, 3) on RGB
  return jnp.einsum('bij,bhwj->bhwi', m.astype(images.dtype), images)


def sample_jitter(rng, n: int, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0,
                  hue: float = 0.0):
  """Factors (n,) each: b ~ U(max(0, 1 − brightness), 1 + brightness), likewise c and s; h ~ U(−hue, hue)."""
  kb, kc, ks, kh = jax.random.split(rng, 4)
  f = lambda k, a: _uniform(k, n, max(0.0, 1.0 - a), 1.0 + a)
  return f(kb, brightness), f(kc, contrast), f(ks, saturation), _uniform(kh, n, -hue, hue)


def color_jitter(rng, images, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4,
                 hue: float = 0.0, clip=None, p: float = 1.0):
  """Brightness, contrast, saturation then hue (this fixed order), factors `sample_jitter(rng, B, ...)`; a zero
  strength skips its step. clip=(lo, hi) clips the result (e.g. (0, 1) for pixels in [0, 1])."""
  for name, v in (('brightness', brightness), ('contrast', contrast), ('saturation', saturation), ('hue', hue)):
    _nonneg(name, v, 'color_jitter')
  if hue > 0.5:
    raise _bad(f'hue={hue!r}', 'a number in [0, 0.5] (turns of the colour circle)', 'color_jitter')
  if clip is not None:
    clip = _range('clip', clip, 'color_jitter', symmetric=False)
  _prob(p, 'color_jitter')
  images = _images(images, 'color_jitter')
  b, c, s, h = sample_jitter(rng, images.shape[0], brightness, contrast, saturation, hue)
  out = images
  if brightness:
    out = adjust_brightness(out, b)
  if contrast:
    out = adjust_contrast(out, c)
  if saturation:
    out = adjust_saturation(out, s)
  if hue:
    out = adjust_hue(out, h)
  if clip is not None:
    out = jnp.clip(out, *clip)
  return _coin(rng, p, images, out)


# -------------------------------------------------------------------------------------- AlexNet lighting
def pca_basis(images) -> tuple[np.ndarray, np.ndarray]:
  """Eigen-decomposition of the C×C covariance of pixel values over a data set (N, H, W, C) (all pixels of all
  images, Krizhevsky et al. 2012, §4.1): (eigvals (C,) descending, eigvecs (C, C), column i for eigvals[i])."""
  x = np.asarray(images, np.float64).reshape(-1, np.shape(images)[-1])
  cov = np.atleast_2d(np.cov(x, rowvar=False))
  vals, vecs = np.linalg.eigh(cov)
  order = np.argsort(vals)[::-1]
  return np.clip(vals[order], 0.0, None).astype(np.float32), vecs[:, order].astype(np.float32)


def lighting(images, alphas, eigvals, eigvecs):
  """x + P(α ⊙ λ) added to every pixel of each image: alphas (B, C), eigvals λ (C,), eigvecs P (C, C) columns.
  The added vector is constant over the image and lies in the span of the eigenvectors."""
  p = jnp.asarray(eigvecs, images.dtype)
  delta = (jnp.asarray(alphas, images.dtype) * jnp.asarray(eigvals, images.dtype)) @ p.T   # (B, C)
  return images + delta[:, None, None, :]


def sample_lighting(rng, n: int, channels: int, std: float = 0.1):
  """α (n, C) ~ N(0, std²) (AlexNet: std 0.1, drawn once per image per presentation)."""
  return std * jax.random.normal(rng, (n, channels), jnp.float32)


def _basis(eigvals, eigvecs, basis):
  if basis is not None:
    if basis != 'imagenet' or eigvals is not None or eigvecs is not None:
      raise _bad(f'basis={basis!r} (eigvals/eigvecs given: {eigvals is not None}/{eigvecs is not None})',
                 "basis='imagenet' alone, or eigvals and eigvecs from jaxdl.data.augment.pca_basis(train images)",
                 'pca_lighting')
    return IMAGENET_EIGVALS, IMAGENET_EIGVECS
  if eigvals is None or eigvecs is None:
    raise _bad('pca_lighting without its eigen-decomposition', "eigvals and eigvecs (jaxdl.data.augment.pca_basis of "
               "the training images) or basis='imagenet'", 'pca_lighting')
  vals, vecs = np.asarray(eigvals, np.float32), np.asarray(eigvecs, np.float32)
  if vals.ndim != 1 or vecs.shape != (vals.size, vals.size):
    raise _bad(f'eigvals of shape {vals.shape} and eigvecs of shape {vecs.shape}', 'shapes (C,) and (C, C)',
               'pca_lighting')
  return vals, vecs


def pca_lighting(rng, images, eigvals=None, eigvecs=None, std: float = 0.1, basis: str | None = None,
                 p: float = 1.0):
  """AlexNet's lighting noise (Krizhevsky et al. 2012, §4.1): to each RGB pixel I_xy add [p1 p2 p3][α1λ1 α2λ2 α3λ3]ᵀ,
  α_i ~ N(0, std²) drawn once per image (`sample_lighting`), (λ_i, p_i) the eigenpairs of the training set's RGB
  covariance (`pca_basis`), or basis='imagenet' (fb.resnet.torch's, for pixels in [0, 1]). Any C channels.

  As in the paper the noise scales with λ (a variance), so it depends on the pixel units.
  """
  vals, vecs = _basis(eigvals, eigvecs, basis)
  _nonneg('std', std, 'pca_lighting')
  _prob(p, 'pca_lighting')
  images = _images(images, 'pca_lighting')
  if images.shape[-1] != vals.size:
    raise UserError(f'pca_lighting has a {vals.size}-channel basis and images with {images.shape[-1]} channels',
                    'the same number', 'compute the basis with jaxdl.data.augment.pca_basis on these images')
  return _coin(rng, p, images, lighting(images, sample_lighting(rng, images.shape[0], vals.size, std), vals, vecs))


# ------------------------------------------------------------------------------------------------ cutout
def erase(images, centres, size: int, value: float = 0.0):
  """Sets the size×size square with rows [cy − ⌊size/2⌋, cy − ⌊size/2⌋ + size) (columns likewise), clipped to the
  image, to `value`; centres (B, 2)."""
  b, h, w, _ = images.shape
  centres = jnp.asarray(centres, jnp.int32)
  top = centres[:, 0, None] - size // 2
  left = centres[:, 1, None] - size // 2
  rows = (jnp.arange(h)[None] >= top) & (jnp.arange(h)[None] < top + size)     # (B, H)
  cols = (jnp.arange(w)[None] >= left) & (jnp.arange(w)[None] < left + size)   # (B, W)
  inside = rows[:, :, None, None] & cols[:, None, :, None]
  return jnp.where(inside, jnp.asarray(value, images.dtype), images)


def sample_cutout(rng, n: int, height: int, width: int):
  """Centres (n, 2) uniform over the pixels (the square may stick out of the image, as in DeVries & Taylor)."""
  return jax.random.randint(rng, (n, 2), 0, jnp.array([height, width]), jnp.int32)


def cutout(rng, images, size: int = 8, value: float = 0.0, p: float = 1.0):
  """Cutout (DeVries & Taylor 2017): `erase(images, sample_cutout(rng, B, H, W), size, value)`."""
  _nonneg('size', size, 'cutout', integer=True)
  _prob(p, 'cutout')
  images = _images(images, 'cutout')
  b, h, w, _ = images.shape
  return _coin(rng, p, images, erase(images, sample_cutout(rng, b, h, w), size, value))


# ------------------------------------------------------------------------------------------------- mixup
def soft_targets(targets, num_classes: int | None = None):
  """Integer labels (B,) -> one-hot (B, K) float32; (B, K) float targets unchanged."""
  targets = jnp.asarray(targets)
  if targets.ndim == 2 and jnp.issubdtype(targets.dtype, jnp.floating):
    return targets
  if num_classes is None:
    raise UserError(f'mixup got integer targets of shape {tuple(targets.shape)} and no num_classes',
                    'num_classes (K) to one-hot them', "add 'num_classes' to the mixup kwargs")
  return jax.nn.one_hot(targets.reshape(targets.shape[0]), num_classes, dtype=jnp.float32)


def mix(images, targets, lam, perm):
  """x̃_i = λ_i x_i + (1 − λ_i) x_π(i), ỹ likewise; lam a scalar or (B,), perm (B,) a permutation, targets (B, K)."""
  images, targets = jnp.asarray(images), jnp.asarray(targets)
  lam = jnp.broadcast_to(jnp.asarray(lam, jnp.float32), (images.shape[0],))
  li = lam.reshape(-1, *([1] * (images.ndim - 1))).astype(images.dtype)
  lt = lam.reshape(-1, *([1] * (targets.ndim - 1))).astype(targets.dtype)
  return li * images + (1 - li) * images[perm], lt * targets + (1 - lt) * targets[perm]


def sample_mixup(rng, n: int, alpha: float = 0.2, per_example: bool = False):
  """(λ, π): λ ~ Beta(α, α), one for the batch (Zhang et al.'s code) or (n,) with per_example; π a uniform
  permutation of the batch (the partner j = π(i) may be i itself)."""
  kl, kp = jax.random.split(rng)
  lam = jax.random.beta(kl, alpha, alpha, (n,) if per_example else ())
  return lam, jax.random.permutation(kp, n)


def mixup(rng, images, targets, alpha: float = 0.2, num_classes: int | None = None, per_example: bool = False):
  """mixup (Zhang et al. 2018): returns (x̃, ỹ) = `mix(images, soft_targets(targets, K), *sample_mixup(...))`;
  ỹ (B, K) sums to 1 when the targets do. E_λ[x̃_i] = ½x_i + ½x̄ over λ and π (E λ = ½ for Beta(α, α))."""
  if not isinstance(alpha, numbers.Real) or alpha <= 0:
    raise _bad(f'alpha={alpha!r}', 'a positive number (Beta(α, α); 0.2 to 0.4 in the paper)', 'mixup')
  if num_classes is not None and (not isinstance(num_classes, numbers.Integral) or num_classes < 2):
    raise _bad(f'num_classes={num_classes!r}', 'an integer >= 2', 'mixup')
  images = _images(images, 'mixup')
  y = soft_targets(targets, num_classes)
  return mix(images, y, *sample_mixup(rng, images.shape[0], float(alpha), per_example))


# ---------------------------------------------------------------------------------------------- pipeline
IMAGE_OPS: dict[str, Callable] = {
    'flip': random_flip,
    'crop': random_crop,
    'translate': random_translate,
    'rotate': random_rotate,
    'scale': random_scale,
    'affine': random_affine,
    'color_jitter': color_jitter,
    'pca_lighting': pca_lighting,
    'cutout': cutout,
}
BATCH_OPS: dict[str, Callable] = {'mixup': mixup}
ALIASES = {'hflip': 'flip', 'random_crop': 'crop', 'rotation': 'rotate', 'jitter': 'color_jitter',
           'lighting': 'pca_lighting'}


def names() -> list[str]:
  return sorted(IMAGE_OPS) + sorted(BATCH_OPS)


def _kwargs_of(fn) -> list[str]:
  skip = ('rng', 'images', 'targets')
  return [n for n in inspect.signature(fn).parameters if n not in skip]


def parse_op(item) -> tuple[str, dict]:
  if isinstance(item, str):
    return item, {}
  if isinstance(item, Mapping) or hasattr(item, 'to_dict'):
    d = dict(item.to_dict() if hasattr(item, 'to_dict') else item)
    if 'name' not in d:
      raise UserError(f'augmentation entry {d!r} has no name', "a mapping {'name': op, **kwargs}",
                      'add the op name')
    return d.pop('name'), d
  if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str):
    kw = item[1].to_dict() if hasattr(item[1], 'to_dict') else item[1]
    if not isinstance(kw, Mapping):
      raise UserError(f'augmentation entry {item!r} has kwargs of type {type(kw).__name__}', 'a dict of kwargs',
                      'write (name, {...})')
    return item[0], dict(kw)
  raise UserError(f'augmentation entry {item!r}', "a name, a (name, kwargs) pair or {'name': ..., **kwargs}",
                  'fix the augmentation list')


def _validate(name: str, fn: Callable, kwargs: dict) -> None:
  """Runs the op's own checks on its kwargs on a tiny abstract batch, so bad values fail at build time."""
  unknown = sorted(set(kwargs) - set(_kwargs_of(fn)))
  if unknown:
    raise UserError(f'augmentation {name!r} got unknown kwargs {unknown}', 'some of: ' + ', '.join(_kwargs_of(fn)),
                    'fix the augmentation list')
  if name == 'pca_lighting':      # needs to know the channels: check the basis alone
    _basis(kwargs.get('eigvals'), kwargs.get('eigvecs'), kwargs.get('basis'))
    channels = np.asarray(kwargs['eigvals']).size if kwargs.get('eigvals') is not None else 3
  else:
    channels = 3
  x = jax.ShapeDtypeStruct((2, 8, 8, channels), jnp.float32)
  key = jax.random.key(0)
  try:
    if name in BATCH_OPS:
      jax.eval_shape(lambda x: fn(key, x, jnp.zeros((2,), jnp.int32), **{'num_classes': 2, **kwargs}), x)
    else:
      jax.eval_shape(lambda x: fn(key, x, **kwargs), x)
  except UserError:
    raise
  except (TypeError, ValueError) as e:
    raise UserError(f'augmentation {name!r} with kwargs {kwargs} failed: {e}', 'valid kwargs',
                    f'see jaxdl.data.augment.{fn.__name__}') from None


@dataclasses.dataclass(frozen=True, eq=False)
class Augment:
  """A sequence of ops; `augment(rng, batch) -> batch` (see the module docstring). Pure: jit and vmap apply."""
  ops: tuple[tuple[str, Callable, tuple[tuple[str, Any], ...]], ...] = ()

  def __call__(self, rng, batch: Mapping[str, Any]) -> dict[str, Any]:
    batch = dict(batch)
    for k, (name, fn, kwargs) in enumerate(self.ops):
      key = jax.random.fold_in(rng, k)
      if name in BATCH_OPS:
        batch['inputs'], batch['targets'] = fn(key, batch['inputs'], batch['targets'], **dict(kwargs))
      else:
        batch['inputs'] = fn(key, batch['inputs'], **dict(kwargs))
    return batch

  @property
  def names(self) -> list[str]:
    return [name for name, _, _ in self.ops]

  def __bool__(self) -> bool:
    return bool(self.ops)


def build_augment(spec: Sequence[Any] | None) -> Augment:
  """The pipeline from a list of ops: each a name, a (name, kwargs) pair or {'name': ..., **kwargs}.

  Names: flip, crop, translate, rotate, scale, affine, color_jitter, pca_lighting, cutout, mixup (aliases hflip,
  random_crop, rotation, jitter, lighting). Raises UserError on an unknown name, kwarg or value.
  """
  ops = []
  for item in spec or ():
    name, kwargs = parse_op(item)
    name = ALIASES.get(name, name)
    fn = IMAGE_OPS.get(name) or BATCH_OPS.get(name)
    if fn is None:
      raise UserError(f'unknown augmentation {name!r}', 'one of: ' + ', '.join(names()), 'fix the augmentation list')
    for k, v in list(kwargs.items()):
      if isinstance(v, list):
        kwargs[k] = tuple(v) if k not in ('eigvals', 'eigvecs') else np.asarray(v, np.float32)
    _validate(name, fn, kwargs)
    ops.append((name, fn, tuple(kwargs.items())))
  return Augment(tuple(ops))
