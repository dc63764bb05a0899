"""Augmentation ops against independent NumPy/SciPy references (flips, padded slices, rolls, rot90, scipy's
map_coordinates, colour formulas, the PCA basis), mixup's expectation, determinism in the key, jit/vmap, and the
pipeline's config forms and errors."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import scipy.ndimage

from jaxdl.data import augment
from jaxdl.errors import UserError

RNG = np.random.default_rng(0)
X = RNG.uniform(size=(6, 8, 8, 3)).astype(np.float32)
KEY = jax.random.key(1)


def test_flip_is_numpy_flip():
  np.testing.assert_array_equal(augment.random_flip(KEY, X, p=1.0), np.flip(X, axis=2))
  np.testing.assert_array_equal(augment.random_flip(KEY, X, p=0.0), X)
  x = RNG.uniform(size=(32, 4, 5, 1)).astype(np.float32)
  out = np.asarray(augment.random_flip(KEY, x))
  flipped = [np.array_equal(o, np.flip(a, axis=1)) for o, a in zip(out, x)]
  kept = [np.array_equal(o, a) for o, a in zip(out, x)]
  assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


@pytest.mark.parametrize('mode, np_mode', [('zero', 'constant'), ('reflect', 'reflect'), ('edge', 'edge')])
def test_crop_is_a_slice_of_the_padded_image(mode, np_mode):
  padding = 3
  out = np.asarray(augment.random_crop(KEY, X, padding=padding, mode=mode))
  offsets = np.asarray(augment.sample_crop(KEY, len(X), padding))
  assert offsets.min() >= 0 and offsets.max() <= 2 * padding and len({tuple(o) for o in offsets}) > 1
  padded = np.pad(X, ((0, 0), (padding, padding), (padding, padding), (0, 0)), mode=np_mode)
  for b, (oy, ox) in enumerate(offsets):
    np.testing.assert_array_equal(out[b], padded[b, oy:oy + 8, ox:ox + 8])


def _roll_zero(x, dy, dx):
  """np.roll with the wrapped-around rows and columns set to 0."""
  out = np.roll(x, (dy, dx), axis=(0, 1))
  if dy > 0:
    out[:dy] = 0
  elif dy < 0:
    out[dy:] = 0
  if dx > 0:
    out[:, :dx] = 0
  elif dx < 0:
    out[:, dx:] = 0
  return out


def test_translation_by_integer_shifts_is_roll_with_zero_fill():
  shifts = np.array([[0, 0], [1, -2], [-3, 2], [5, 5], [-8, 0], [2, 9]])
  out = np.asarray(augment.shift(X, shifts))
  for b, (dy, dx) in enumerate(shifts):
    np.testing.assert_array_equal(out[b], _roll_zero(X[b], dy, dx))
  # the bilinear warp agrees at integer translations
  np.testing.assert_allclose(augment.affine(X, translation=shifts.astype(np.float32)), out, atol=1e-6)
  # the random op uses the drawn shifts
  r = np.asarray(augment.random_translate(KEY, X, max_shift=2))
  drawn = np.asarray(augment.sample_translate(KEY, len(X), 2))
  assert np.abs(drawn).max() <= 2
  for b, (dy, dx) in enumerate(drawn):
    np.testing.assert_array_equal(r[b], _roll_zero(X[b], dy, dx))


def test_rotation_by_0_is_identity_and_by_90_is_rot90():
  np.testing.assert_allclose(augment.affine(X, angle=0.0), X, atol=1e-6)
  np.testing.assert_allclose(augment.random_rotate(KEY, X, degrees=0.0), X, atol=1e-6)
  np.testing.assert_allclose(augment.affine(X, angle=90.0), np.rot90(X, 1, axes=(1, 2)), atol=1e-5)
  np.testing.assert_allclose(augment.affine(X, angle=180.0), X[:, ::-1, ::-1], atol=1e-5)
  # a non-square image: the interior (where the rotated grid stays inside) matches rot90 of the central square
  x = RNG.uniform(size=(2, 9, 7, 1)).astype(np.float32)
  out = np.asarray(augment.affine(x, angle=90.0))
  np.testing.assert_allclose(out[:, 1:8], np.rot90(x[:, 1:8], 1, axes=(1, 2)), atol=1e-5)


def test_affine_matches_scipy_map_coordinates():
  angle, scale, t = (np.asarray(a) for a in augment.sample_affine(KEY, len(X), (-30.0, 30.0), (0.8, 1.2), 2.0))
  out = np.asarray(augment.random_affine(KEY, X, degrees=30.0, scale=(0.8, 1.2), translate=2.0))
  c = 3.5
  ii, jj = np.meshgrid(np.arange(8.0), np.arange(8.0), indexing='ij')
  for b in range(len(X)):
    th = np.deg2rad(angle[b])
    y, x = ii - c - t[b, 0], jj - c - t[b, 1]
    qy = (np.cos(th) * y + np.sin(th) * x) / scale[b] + c
    qx = (-np.sin(th) * y + np.cos(th) * x) / scale[b] + c
    ref = np.stack([scipy.ndimage.map_coordinates(X[b, ..., k].astype(np.float64), [qy, qx], order=1,
                                                  mode='grid-constant', cval=0.0) for k in range(3)], -1)
    np.testing.assert_allclose(out[b], ref, atol=1e-4)
  # scale alone: the centre of an odd image stays, s > 1 zooms in
  x = RNG.uniform(size=(1, 9, 9, 1)).astype(np.float32)
  z = np.asarray(augment.affine(x, scale=2.0))
  assert z[0, 4, 4, 0] == pytest.approx(x[0, 4, 4, 0], abs=1e-6)
  assert z[0, 6, 4, 0] == pytest.approx(x[0, 5, 4, 0], abs=1e-6)
  assert z[0, 5, 4, 0] == pytest.approx(0.5 * (x[0, 4, 4, 0] + x[0, 5, 4, 0]), abs=1e-6)


def _gray(x):
  return (x @ np.array([0.299, 0.587, 0.114]))[..., None]


def test_colour_adjustments_match_their_formulas():
  f = np.array([0.0, 0.5, 1.0, 1.3, 0.8, 2.0], np.float32)
  np.testing.assert_allclose(augment.adjust_brightness(X, f), X * f[:, None, None, None], atol=1e-6)
  m = _gray(X).mean(axis=(1, 2, 3), keepdims=True)
  np.testing.assert_allclose(augment.adjust_contrast(X, f), m + f[:, None, None, None] * (X - m), atol=1e-5)
  g = _gray(X).astype(np.float32)
  np.testing.assert_allclose(augment.adjust_saturation(X, f), g + f[:, None, None, None] * (X - g), atol=1e-5)
  grey = np.asarray(augment.adjust_saturation(X, np.zeros(6)))
  np.testing.assert_allclose(grey, np.repeat(g, 3, -1), atol=1e-5)
  # hue: 0 and a whole turn are the identity, luma is kept, grey pixels do not move
  h = np.array([0.0, 0.1, -0.2, 0.5, 1.0, 0.3], np.float32)
  out = np.asarray(augment.adjust_hue(X, h))
  np.testing.assert_allclose(out[0], X[0], atol=1e-5)
  np.testing.assert_allclose(out[4], X[4], atol=1e-5)
  np.testing.assert_allclose(_gray(out), _gray(X), atol=1e-5)
  assert not np.allclose(out[1], X[1], atol=1e-3)
  np.testing.assert_allclose(augment.adjust_hue(np.repeat(g, 3, -1), h), np.repeat(g, 3, -1), atol=1e-5)
  # grey images: saturation and hue are the identity
  x1 = X[..., :1]
  np.testing.assert_allclose(augment.adjust_saturation(x1, f), x1, atol=1e-6)
  np.testing.assert_array_equal(augment.adjust_hue(x1, h), x1)


def test_color_jitter_composes_the_drawn_factors():
  out = np.asarray(augment.color_jitter(KEY, X, brightness=0.4, contrast=0.3, saturation=0.5, hue=0.1))
  b, c, s, h = (np.asarray(a) for a in augment.sample_jitter(KEY, len(X), 0.4, 0.3, 0.5, 0.1))
  assert (b >= 0.6).all() and (b <= 1.4).all() and (np.abs(h) <= 0.1).all()
  ref = X * b[:, None, None, None]
  m = _gray(ref).mean(axis=(1, 2, 3), keepdims=True)
  ref = m + c[:, None, None, None] * (ref - m)
  g = _gray(ref)
  ref = g + s[:, None, None, None] * (ref - g)
  ref = augment.adjust_hue(ref.astype(np.float32), h)
  np.testing.assert_allclose(out, ref, atol=1e-5)
  clipped = np.asarray(augment.color_jitter(KEY, X, brightness=2.0, clip=(0.0, 1.0)))
  assert clipped.min() >= 0.0 and clipped.max() <= 1.0


def test_pca_basis_recovers_the_covariance():
  cov = np.array([[2.0, 0.8, 0.3], [0.8, 1.0, 0.2], [0.3, 0.2, 0.5]])
  pix = RNG.multivariate_normal(np.zeros(3), cov, size=20000).reshape(50, 20, 20, 3)
  vals, vecs = augment.pca_basis(pix)
  ref_vals, ref_vecs = np.linalg.eigh(np.cov(pix.reshape(-1, 3), rowvar=False))
  np.testing.assert_allclose(vals, ref_vals[::-1], rtol=1e-5)
  np.testing.assert_allclose(np.abs(vecs.T @ ref_vecs[:, ::-1]), np.eye(3), atol=1e-5)   # same axes up to sign
  np.testing.assert_allclose(vals, np.linalg.eigvalsh(cov)[::-1], rtol=0.05)


def test_pca_lighting_adds_a_constant_vector_in_the_span_of_the_eigvecs():
  # data whose RGB covariance has rank 2 (B = (R + G)/2): the added vector has no component along the null axis
  rg = RNG.uniform(size=(40, 8, 8, 2))
  data = np.concatenate([rg, rg.mean(-1, keepdims=True)], -1).astype(np.float32)
  vals, vecs = augment.pca_basis(data)
  assert vals[2] < 1e-6 * vals[0]
  x = data[:64 // 8]
  out = np.asarray(augment.pca_lighting(KEY, x, eigvals=vals, eigvecs=vecs))
  delta = out - x
  np.testing.assert_allclose(delta, np.broadcast_to(delta[:, :1, :1], delta.shape), atol=1e-6)   # per-image constant
  d = delta[:, 0, 0]
  alphas = np.asarray(augment.sample_lighting(KEY, len(x), 3))
  np.testing.assert_allclose(d, (alphas * vals) @ vecs.T, atol=1e-6)
  assert np.abs(d @ vecs[:, 2]).max() < 1e-6 and np.abs(d).max() > 0
  # α ~ N(0, 0.1²)
  a = np.asarray(augment.sample_lighting(KEY, 20000, 3))
  assert a.std() == pytest.approx(0.1, rel=0.03) and abs(a.mean()) < 0.005
  # the ImageNet basis by name
  out = np.asarray(augment.pca_lighting(KEY, X, basis='imagenet'))
  d = np.asarray(augment.sample_lighting(KEY, 6, 3)) * augment.IMAGENET_EIGVALS @ augment.IMAGENET_EIGVECS.T
  np.testing.assert_allclose(out - X, np.broadcast_to(d[:, None, None], X.shape), atol=1e-6)


def test_cutout_zeroes_a_square():
  centres = np.array([[4, 4], [0, 0], [7, 3], [2, 6], [5, 1], [3, 3]])
  out = np.asarray(augment.erase(X, centres, 4))
  for b, (cy, cx) in enumerate(centres):
    ref = X[b].copy()
    ref[max(cy - 2, 0):cy + 2, max(cx - 2, 0):cx + 2] = 0.0
    np.testing.assert_array_equal(out[b], ref)
  r = np.asarray(augment.cutout(KEY, X, size=3))
  drawn = np.asarray(augment.sample_cutout(KEY, 6, 8, 8))
  np.testing.assert_array_equal(r, augment.erase(X, drawn, 3))


def test_mixup_targets_and_expectation():
  labels = np.array([0, 1, 2, 3, 1, 0])
  xm, ym, lam, perm = jax.jit(lambda k: (*augment.mixup(k, X, labels, alpha=0.4, num_classes=4),
                                         *augment.sample_mixup(k, 6, 0.4)))(KEY)
  lam, perm = float(lam), np.asarray(perm)
  onehot = np.eye(4)[labels]
  np.testing.assert_allclose(xm, lam * X + (1 - lam) * X[perm], atol=1e-6)
  np.testing.assert_allclose(ym, lam * onehot + (1 - lam) * onehot[perm], atol=1e-6)
  np.testing.assert_allclose(np.asarray(ym).sum(1), 1.0, atol=1e-6)
  assert sorted(perm) == list(range(6))
  # soft targets go through as they are; per-example λ
  _, ys = augment.mixup(KEY, X, jnp.asarray(onehot, jnp.float32), alpha=1.0, per_example=True)
  np.testing.assert_allclose(np.asarray(ys).sum(1), 1.0, atol=1e-6)
  # E[x̃_i] = ½ x_i + ½ x̄ over λ ~ Beta(α, α) and a uniform permutation
  keys = jax.random.split(jax.random.key(7), 4000)
  xs, lams = jax.jit(jax.vmap(lambda k: (augment.mixup(k, X, labels, alpha=0.4, num_classes=4)[0],
                                          augment.sample_mixup(k, 6, 0.4)[0])))(keys)
  np.testing.assert_allclose(np.asarray(xs).mean(0), 0.5 * X + 0.5 * X.mean(0), atol=0.03)
  assert float(lams.mean()) == pytest.approx(0.5, abs=0.02)


ALL = [('flip', {}), ('crop', {'padding': 2, 'mode': 'reflect'}), ('translate', {'max_shift': 1}),
       ('rotate', {'degrees': 10}), ('scale', {'scale': [0.9, 1.1]}), ('affine', {'degrees': 5, 'translate': 1.0}),
       ('color_jitter', {'hue': 0.05, 'p': 0.5}), ('pca_lighting', {'basis': 'imagenet'}), ('cutout', {'size': 2}),
       ('mixup', {'alpha': 0.2, 'num_classes': 4})]


def _batch():
  return {'inputs': jnp.asarray(X), 'targets': jnp.array([0, 1, 2, 3, 1, 0]), 'mask': jnp.ones(6)}


def test_pipeline_is_deterministic_in_the_key_and_jit_and_vmap_apply():
  aug = augment.build_augment(ALL)
  assert aug.names == [n for n, _ in ALL]
  short = augment.build_augment(ALL[:2])                     # eager (slow to dispatch op by op) = jit
  np.testing.assert_allclose(short(KEY, _batch())['inputs'], jax.jit(short)(KEY, _batch())['inputs'], atol=1e-6)
  jaug = jax.jit(aug)
  out = jaug(KEY, _batch())
  assert out['inputs'].shape == X.shape and out['inputs'].dtype == jnp.float32
  assert out['targets'].shape == (6, 4)
  np.testing.assert_allclose(out['targets'].sum(1), 1.0, atol=1e-6)
  np.testing.assert_array_equal(out['mask'], np.ones(6))
  np.testing.assert_array_equal(jaug(KEY, _batch())['inputs'], out['inputs'])
  assert not np.allclose(jaug(jax.random.key(2), _batch())['inputs'], out['inputs'])
  # vmap over (key, batch) pairs: the image ops here (mixup is vmapped in its own test)
  images_only = augment.build_augment(ALL[:-1])
  keys = jax.random.split(KEY, 3)
  batches = jax.tree.map(lambda a: jnp.stack([a, a[::-1], a]), _batch())
  vm = jax.jit(jax.vmap(images_only))(keys, batches)
  run = jax.jit(images_only)
  for i in range(3):
    one = run(keys[i], jax.tree.map(lambda a: a[i], batches))
    np.testing.assert_allclose(vm['inputs'][i], one['inputs'], atol=1e-5)


def test_each_op_is_deterministic_and_keeps_shapes():
  ops = [augment.build_augment([item]) for item in ALL[:-1]]
  run = jax.jit(lambda key, batch: [op(key, batch)['inputs'] for op in ops])   # one compilation for all
  for item, a, b, c in zip(ALL, run(KEY, _batch()), run(KEY, _batch()), run(jax.random.key(99), _batch())):
    assert a.shape == X.shape, item
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c), item


def test_pipeline_config_forms():
  cfg = ml_collections.ConfigDict({'name': 'crop', 'padding': 1})
  forms = ['hflip', ('flip', {'p': 1.0}), {'name': 'cutout', 'size': 2}, cfg]
  aug = augment.build_augment(forms)
  assert aug.names == ['flip', 'flip', 'cutout', 'crop']
  assert not augment.build_augment([]) and not augment.build_augment(None)
  out = augment.build_augment(None)(KEY, _batch())
  np.testing.assert_array_equal(out['inputs'], X)
  ints = {'inputs': jnp.asarray((X * 255).astype(np.uint8)), 'targets': jnp.zeros(6, jnp.int32)}
  assert augment.build_augment(['flip'])(KEY, ints)['inputs'].dtype == jnp.float32
  vals, vecs = augment.pca_basis(X)
  augment.build_augment([('lighting', {'eigvals': list(vals), 'eigvecs': vecs.tolist()})])(KEY, _batch())


@pytest.mark.parametrize('spec, needle', [
    ([('shear', {})], "unknown augmentation 'shear'"),
    ([('crop', {'pad': 4})], "unknown kwargs ['pad']"),
    ([('crop', {'padding': -1})], 'padding=-1'),
    ([('crop', {'padding': 2.5})], 'padding=2.5'),
    ([('translate', {'mode': 'wrap'})], "mode='wrap'"),
    ([('flip', {'p': 2})], 'p=2'),
    ([('scale', {'scale': (1.2, 0.8)})], 'scale=(1.2, 0.8)'),
    ([('scale', {'scale': 1.1})], 'scale=1.1'),
    ([('color_jitter', {'hue': 0.7})], 'hue=0.7'),
    ([('pca_lighting', {})], 'pca_lighting without'),
    ([('pca_lighting', {'eigvals': [1.0, 2.0], 'eigvecs': [[1.0]]})], 'eigvecs of shape'),
    ([('mixup', {'alpha': 0})], 'alpha=0'),
    ([('mixup', {'num_classes': 1})], 'num_classes=1'),
    ([42], 'augmentation entry 42'),
    ([{'padding': 4}], 'has no name'),
])
def test_bad_specs_raise_one_line_user_errors(spec, needle):
  with pytest.raises(UserError) as e:
    augment.build_augment(spec)
  msg = str(e.value)
  assert needle in msg and '\n' not in msg and 'expected' in msg


def test_runtime_errors_are_user_errors():
  with pytest.raises(UserError, match='NHWC'):
    augment.random_flip(KEY, X[..., 0])
  with pytest.raises(UserError, match='num_classes'):
    augment.build_augment([('mixup', {})])(KEY, _batch())
  with pytest.raises(UserError, match='channels'):
    augment.pca_lighting(KEY, X[..., :1], basis='imagenet')
  with pytest.raises(UserError, match='channels'):
    augment.color_jitter(KEY, X[..., :2], saturation=0.5)
