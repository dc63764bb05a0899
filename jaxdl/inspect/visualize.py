"""Visualising what a CNN classifier learned: first-layer filters, saliency, guided backpropagation, Grad-CAM.

Seed 000 (SUPERVISION: "the first layer learned to extract meaningful features"; ZFNet's visualisations;
Springenberg et al.'s guided backpropagation), seed 002 (course 3, 4.2: look at the feature maps, "or let a neural
network do it for you: Grad-CAM"), seed 003 (visualise features and parameters). Every function takes any flax
linen classifier whose `model.apply(variables, x, train=False)` returns logits (B, K) for images x (B, H, W, C);
`target` is the class c per example (an int, an array (B,), or None for the predicted class argmax_k y_k).
Examples are independent in eval mode, so the gradient of Σ_b y_{b,c_b} gives every example's own gradient.

  input_gradient(...)   ∂y_c/∂x (B, H, W, C)
  saliency(...)         M_ij = max_ch |∂y_c/∂x_ij,ch| (B, H, W)          Simonyan, Vedaldi & Zisserman 2014, §3.1
  guided_backprop(...)  ∂y_c/∂x where each ReLU passes back only positive gradients, and only where its forward
                        input was positive: R_l = (f_l > 0)·(R_{l+1} > 0)·R_{l+1}    Springenberg et al. 2015, Fig. 1
  grad_cam(...)         α_k = (1/Z) Σ_ij ∂y_c/∂A^k_ij, L = ReLU(Σ_k α_k A^k) upsampled (bilinear) to H×W, for the
                        feature maps A (B, h, w, K) of one layer         Selvaraju et al. 2017, eqs. 1-2
  guided_grad_cam(...)  guided backpropagation ⊙ the Grad-CAM heatmap   (Selvaraju et al. 2017, §3.1)

Layers are named by their module path, '/'-joined as in the params tree ('Conv_1', 'block2/conv'):
`layer_outputs` lists them with their output shapes; a layer's output (the feature maps) is captured, and the
gradient with respect to it taken, with `flax.linen.intercept_methods` (the output is replaced by output + δ, and
∂y_c/∂δ at δ = 0 is ∂y_c/∂A), so models need no changes. A module called more than once is captured at its first
call.

Guided backpropagation rewrites the traced computation (its jaxpr) rather than the model: every ReLU in it,
written `jax.nn.relu` (= `flax.linen.relu`, jaxdl.nn.activations' 'relu', wherever it is referenced from) or
`jnp.maximum(x, 0)` (a zero literal or constant operand), is replaced by a ReLU with the guided backward pass;
calls to jit-ted functions and rematerialised (nn.remat) modules are inlined so their ReLUs are found too.
Limitation: other rectifiers (leaky ReLU, ELU, GELU, PReLU, `jnp.where(x > 0, x, 0)`) keep their ordinary
gradient, and ReLUs inside control flow (lax.scan / nn.scan, cond, while) or inside another function with its own
custom derivative (custom_jvp/custom_vjp) are not reached.

Figures (matplotlib, Agg): `plot_filters` (first-layer kernels, one tile per filter, each min-max normalised),
`plot_maps` (a grid: one row per image, the input then each method's map, heatmaps overlaid on the input),
`plot_feature_maps`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

from jaxdl.errors import UserError


# ---------------------------------------------------------------------------------------------- helpers
def _logits_fn(model, variables) -> Callable[[jax.Array], jax.Array]:
  return lambda x: model.apply(variables, x, train=False)


def _targets(target, logits) -> jax.Array:
  """The class per example: argmax of the logits for None, an int for all, or an array (B,)."""
  b = logits.shape[0]
  if target is None:
    return jnp.argmax(logits, axis=-1)
  return jnp.broadcast_to(jnp.asarray(target, jnp.int32), (b,))


def _score_grad(f: Callable, x, target):
  """(∂/∂x Σ_b f(x)_{b, c_b}, logits, c): each example's class-score gradient (examples are independent)."""
  x = jnp.asarray(x, jnp.float32)
  logits = f(x)
  if logits.ndim != 2:
    raise UserError(f'the model returned outputs of shape {tuple(logits.shape)}', 'logits (B, K)',
                    'visualise a classifier, or wrap the model to return logits')
  c = _targets(target, logits)
  score = lambda x: jnp.sum(jnp.take_along_axis(f(x), c[:, None], axis=-1))
  return jax.grad(score)(x), logits, c


def _path(module) -> str:
  return '/'.join(str(p) for p in module.path)


# -------------------------------------------------------------------------------------------- gradients
def input_gradient(model, variables, x, target=None) -> jax.Array:
  """∂y_c/∂x (B, H, W, C), y = the logits in eval mode."""
  return _score_grad(_logits_fn(model, variables), x, target)[0]


def saliency(model, variables, x, target=None) -> jax.Array:
  """Simonyan et al. 2014: M_ij = max over channels of |∂y_c/∂x_ij| (B, H, W) (y_c the unnormalised class score)."""
  return jnp.max(jnp.abs(input_gradient(model, variables, x, target)), axis=-1)


# --------------------------------------------------------------------------------- guided backpropagation
@jax.custom_vjp
def guided_relu(x):
  """max(x, 0) whose backward pass is g·(x > 0)·(g > 0) (Springenberg et al. 2015)."""
  return jnp.maximum(x, 0)


def _guided_fwd(x):
  return jnp.maximum(x, 0), x


def _guided_bwd(x, g):
  return (jnp.where((x > 0) & (g > 0), g, jnp.zeros_like(g)),)


guided_relu.defvjp(_guided_fwd, _guided_bwd)

_CALLS = ('jit', 'pjit', 'closed_call', 'core_call', 'checkpoint', 'remat', 'remat2')   # sub-jaxprs inlined here
_ZERO_KEEPING = ('broadcast_in_dim', 'convert_element_type', 'reshape', 'squeeze', 'expand_dims', 'copy')


def _is_zero_value(v) -> bool:
  try:
    return bool(np.all(np.asarray(v) == 0))
  except Exception:  # pylint: disable=broad-except  (a tracer: not a constant)
    return False


def _sub_jaxpr(eqn):
  """The (closed) jaxpr of a call-like equation, or None."""
  for key in ('jaxpr', 'call_jaxpr'):
    sub = eqn.params.get(key)
    if sub is not None:
      return sub
  return None


def _computes_relu(jaxpr) -> bool:
  """Whether a jaxpr is exactly max(x, 0), possibly inside nested jit calls (jax.nn.relu's body)."""
  if len(jaxpr.eqns) != 1:
    return False
  eqn = jaxpr.eqns[0]
  if eqn.primitive.name == 'max':
    return any(isinstance(v, jcore.Literal) and _is_zero_value(v.val) for v in eqn.invars)
  sub = _sub_jaxpr(eqn) if eqn.primitive.name in _CALLS else None
  return sub is not None and _computes_relu(getattr(sub, 'jaxpr', sub))


def _eval_guided(jaxpr, consts, *args):
  """Evaluates a jaxpr (like jax.core.eval_jaxpr) with every ReLU replaced by `guided_relu`."""
  env: dict[Any, Any] = {}
  zeros: set = set()        # variables known to hold a constant 0

  def read(v):
    return v.val if isinstance(v, jcore.Literal) else env[v]

  def is_zero(v):
    return (isinstance(v, jcore.Literal) and _is_zero_value(v.val)) or (not isinstance(v, jcore.Literal) and v in zeros)

  for v, val in zip(jaxpr.constvars, consts):
    env[v] = val
    if _is_zero_value(val):
      zeros.add(v)
  for v, val in zip(jaxpr.invars, args):
    env[v] = val

  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    invals = [read(v) for v in eqn.invars]
    if name == 'max' and len(invals) == 2 and (is_zero(eqn.invars[0]) or is_zero(eqn.invars[1])):
      x, zero = (invals[1], invals[0]) if is_zero(eqn.invars[0]) else (invals[0], invals[1])
      outs = [guided_relu(jnp.broadcast_to(x, jnp.broadcast_shapes(jnp.shape(x), jnp.shape(zero))))]
    elif name == 'custom_jvp_call' and _computes_relu(eqn.params['call_jaxpr'].jaxpr):
      outs = [guided_relu(invals[0])]
    elif name in _CALLS and _sub_jaxpr(eqn) is not None:
      sub = _sub_jaxpr(eqn)
      closed_consts = getattr(sub, 'consts', ())
      outs = _eval_guided(getattr(sub, 'jaxpr', sub), closed_consts, *invals)
    else:
      bind = eqn.primitive.get_bind_params(eqn.params)      # jax < 0.7: (subfuns, params)
      subfuns, params = bind if isinstance(bind, tuple) else ((), bind)
      ans = eqn.primitive.bind(*subfuns, *invals, **params)
      outs = ans if eqn.primitive.multiple_results else [ans]
    if name in _ZERO_KEEPING and is_zero(eqn.invars[0]):
      zeros.update(v for v in eqn.outvars if not isinstance(v, jcore.DropVar))
    for v, val in zip(eqn.outvars, outs):
      if not isinstance(v, jcore.DropVar):
        env[v] = val
  return [read(v) for v in jaxpr.outvars]


def with_guided_relus(f: Callable) -> Callable:
  """f with the same outputs, whose ReLUs backpropagate as `guided_relu` (see the module docstring for which ReLUs
  are found). f takes and returns arrays (pytrees are flattened); it is traced anew at each call."""
  def guided(*args):
    closed, out_shape = jax.make_jaxpr(f, return_shape=True)(*args)
    outs = _eval_guided(closed.jaxpr, closed.consts, *jax.tree.leaves(args))
    return jax.tree.unflatten(jax.tree.structure(out_shape), outs)
  return guided


def guided_backprop(model, variables, x, target=None) -> jax.Array:
  """Springenberg et al. 2015: ∂y_c/∂x (B, H, W, C) with the guided ReLU backward pass (only positive gradients,
  only through units whose input was positive)."""
  return _score_grad(with_guided_relus(_logits_fn(model, variables)), x, target)[0]


# ---------------------------------------------------------------------------------------------- Grad-CAM
def _module_calls(model, variables, x) -> list[tuple[str, nn.Module, tuple[int, ...] | None]]:
  """(path, module, output shape or None) of every module's first `__call__`, in call order (shapes only:
  jax.eval_shape, nothing is computed)."""
  calls: dict[str, tuple[nn.Module, tuple[int, ...] | None]] = {}

  def interceptor(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    path = _path(context.module)
    if context.method_name == '__call__' and path not in calls:
      calls[path] = (context.module, tuple(out.shape) if hasattr(out, 'shape') else None)
    return out

  with nn.intercept_methods(interceptor):
    jax.eval_shape(_logits_fn(model, variables), jnp.asarray(x, jnp.float32))
  return [(path, m, shape) for path, (m, shape) in calls.items()]


def layer_outputs(model, variables, x) -> dict[str, tuple[str, tuple[int, ...]]]:
  """{module path: (module class name, output shape)} in call order (the model's own path is '')."""
  return {path: (type(m).__name__, shape) for path, m, shape in _module_calls(model, variables, x)
          if shape is not None}


def conv_layers(model, variables, x) -> list[str]:
  """Paths of the nn.Conv modules in call order."""
  return [path for path, m, _ in _module_calls(model, variables, x) if isinstance(m, nn.Conv)]


def _with_layer(model, variables, layer: str, delta):
  """x -> (logits, A): the model with layer's output A replaced by A + delta (delta None: unchanged)."""
  def f(x):
    captured = {}

    def interceptor(next_fun, args, kwargs, context):
      out = next_fun(*args, **kwargs)
      if context.method_name == '__call__' and 'A' not in captured and _path(context.module) == layer:
        captured['A'] = out
        if delta is not None:
          out = out + delta
      return out

    with nn.intercept_methods(interceptor):
      logits = model.apply(variables, x, train=False)
    return logits, captured.get('A')
  return f


def _resolve_layer(model, variables, x, layer):
  if layer is None:
    convs = conv_layers(model, variables, x)
    if not convs:
      raise UserError('the model has no nn.Conv layer', 'a CNN, or a layer named explicitly',
                      'pass layer= one of the paths from jaxdl.inspect.visualize.layer_outputs')
    return convs[-1]
  outputs = layer_outputs(model, variables, x)
  if layer not in outputs:
    choices = ', '.join(p for p, (_, s) in outputs.items() if p and len(s) == 4)
    raise UserError(f'no layer {layer!r} in the model', f'a module path with a 4-D output: {choices}',
                    'pass one of these as layer=')
  if len(outputs[layer][1]) != 4:
    raise UserError(f'layer {layer!r} outputs shape {outputs[layer][1]}', 'feature maps (B, h, w, K)',
                    'choose a convolutional layer')
  return layer


def feature_maps(model, variables, x, layer: str | None = None) -> jax.Array:
  """The output (B, h, w, K) of `layer` (default: the last nn.Conv) in eval mode."""
  layer = _resolve_layer(model, variables, x, layer)
  return _with_layer(model, variables, layer, None)(jnp.asarray(x, jnp.float32))[1]


@dataclasses.dataclass
class GradCAM:
  heatmap: jax.Array      # (B, H, W): the map upsampled to the input size (bilinear), ≥ 0
  cam: jax.Array          # (B, h, w): ReLU(Σ_k α_k A^k) at the layer's resolution
  weights: jax.Array      # (B, K): α_k = mean_ij ∂y_c/∂A^k_ij
  activations: jax.Array  # (B, h, w, K): A
  target: jax.Array       # (B,): the class c
  layer: str


def grad_cam(model, variables, x, target=None, layer: str | None = None) -> GradCAM:
  """Selvaraju et al. 2017: for the feature maps A of `layer` (default: the last nn.Conv, as in the paper),
  α_k = (1/(h·w)) Σ_ij ∂y_c/∂A^k_ij and L = ReLU(Σ_k α_k A^k), resized bilinearly (half-pixel centres) to H×W."""
  x = jnp.asarray(x, jnp.float32)
  layer = _resolve_layer(model, variables, x, layer)
  logits, a = _with_layer(model, variables, layer, None)(x)
  c = _targets(target, logits)

  def score(delta):
    out, _ = _with_layer(model, variables, layer, delta)(x)
    return jnp.sum(jnp.take_along_axis(out, c[:, None], axis=-1))

  g = jax.grad(score)(jnp.zeros_like(a))
  alpha = jnp.mean(g, axis=(1, 2))                                  # (B, K)
  cam = jax.nn.relu(jnp.einsum('bk,bhwk->bhw', alpha, a))
  heat = jax.image.resize(cam, (x.shape[0], x.shape[1], x.shape[2]), method='bilinear')
  return GradCAM(jnp.maximum(heat, 0.0), cam, alpha, a, c, layer)


def guided_grad_cam(model, variables, x, target=None, layer: str | None = None) -> jax.Array:
  """Guided backpropagation ⊙ Grad-CAM heatmap (B, H, W, C) (Selvaraju et al. 2017, §3.1)."""
  cam = grad_cam(model, variables, x, target, layer)
  return guided_backprop(model, variables, x, cam.target) * cam.heatmap[..., None]


# ------------------------------------------------------------------------------------------------ filters
def conv_kernels(params) -> dict[str, jax.Array]:
  """Every 4-D 'kernel' (HWIO) in a params tree, {path: kernel}, in the tree's stored order."""
  out = {}

  def walk(tree, prefix):
    for k, v in tree.items():
      path = f'{prefix}/{k}' if prefix else str(k)
      if isinstance(v, Mapping):
        walk(v, path)
      elif k == 'kernel' and np.ndim(v) == 4:
        out[prefix] = v
  walk(params, '')
  return out


def first_conv(model, variables, x) -> tuple[str, jax.Array]:
  """(path, kernel (kh, kw, in, out)) of the first nn.Conv the model calls on x."""
  convs = conv_layers(model, variables, x)
  if not convs:
    raise UserError('the model has no nn.Conv layer', 'a CNN', 'plot the filters of a convolutional model')
  node = variables['params']
  for part in convs[0].split('/'):
    node = node[part]
  return convs[0], node['kernel']


def normalize_filters(kernel) -> np.ndarray:
  """(kh, kw, in, out) -> (out, kh, kw, in), each filter min-max scaled to [0, 1] (a constant filter -> 0.5)."""
  k = np.moveaxis(np.asarray(kernel, np.float64), -1, 0)
  lo = k.min(axis=(1, 2, 3), keepdims=True)
  hi = k.max(axis=(1, 2, 3), keepdims=True)
  span = hi - lo
  return np.where(span > 0, (k - lo) / np.where(span > 0, span, 1.0), 0.5)


def normalize_maps(maps) -> np.ndarray:
  """Per example min-max to [0, 1] over all remaining axes (a constant map -> 0)."""
  m = np.asarray(maps, np.float64)
  axes = tuple(range(1, m.ndim))
  lo, hi = m.min(axis=axes, keepdims=True), m.max(axis=axes, keepdims=True)
  return (m - lo) / np.where(hi > lo, hi - lo, 1.0)


def _grid(n: int, ncols: int | None) -> tuple[int, int]:
  ncols = ncols or int(np.ceil(np.sqrt(n)))
  return int(np.ceil(n / ncols)), ncols


def plot_filters(kernel, path, title: str = '', ncols: int | None = None) -> str:
  """One tile per output filter of a conv kernel (kh, kw, in, out), min-max normalised each: RGB for in = 3,
  grey for in = 1, the mean over input channels otherwise."""
  from jaxdl import plots  # pylint: disable=g-import-not-at-top
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  f = normalize_filters(kernel)
  if f.shape[-1] != 3:
    f = f.mean(-1)
  nrows, ncols = _grid(len(f), ncols)
  fig, axes = plt.subplots(nrows, ncols, figsize=(1.1 * ncols, 1.1 * nrows + (0.4 if title else 0)), squeeze=False)
  for i, ax in enumerate(axes.ravel()):
    ax.axis('off')
    if i < len(f):
      ax.imshow(f[i], cmap=None if f.ndim == 4 else 'gray', vmin=0, vmax=1, interpolation='nearest')
  if title:
    fig.suptitle(title)
  return plots.save(fig, path)


def plot_first_layer_filters(model, variables, x, path, title: str | None = None) -> str:
  """`plot_filters` of the model's first nn.Conv."""
  name, kernel = first_conv(model, variables, x)
  return plot_filters(kernel, path, title=f'first-layer filters ({name})' if title is None else title)


def _show_image(ax, img):
  img = normalize_maps(np.asarray(img)[None])[0]
  if img.shape[-1] == 1:
    ax.imshow(img[..., 0], cmap='gray', vmin=0, vmax=1)
  else:
    ax.imshow(img)


def plot_maps(images, maps: Mapping[str, Any] | Any, path, titles: Sequence[str] | None = None, alpha: float = 0.5,
              cmap: str = 'jet', overlay: bool = True) -> str:
  """Grid for a report: one row per image, columns: the input, then one per method in `maps` ({name: maps}, or one
  array). Heatmaps (B, H, W) are min-max normalised per image and drawn over the (grey) input with `alpha`
  (alone with overlay=False); gradient images (B, H, W, C) are min-max normalised and drawn as images.
  `titles` labels the rows (e.g. 'label 3, predicted 3')."""
  from jaxdl import plots  # pylint: disable=g-import-not-at-top
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  images = np.asarray(images)
  if not isinstance(maps, Mapping):
    maps = {'map': maps}
  maps = {k: np.asarray(v) for k, v in maps.items()}
  for k, v in maps.items():
    if v.shape[0] != len(images) or v.shape[1:3] != images.shape[1:3]:
      raise UserError(f'map {k!r} has shape {v.shape} for images of shape {images.shape}',
                      'maps (B, H, W) or (B, H, W, C) matching the images', 'upsample the maps to the input size')
  n, ncols = len(images), 1 + len(maps)
  fig, axes = plt.subplots(n, ncols, figsize=(1.9 * ncols, 1.9 * n), squeeze=False)
  for i in range(n):
    ax = axes[i, 0]
    _show_image(ax, images[i])
    if titles is not None:
      ax.set_ylabel(titles[i], fontsize=8)
    for j, (name, m) in enumerate(maps.items(), start=1):
      ax = axes[i, j]
      if m.ndim == 4:
        _show_image(ax, m[i])
      else:
        heat = normalize_maps(m[i][None])[0]
        if overlay:
          grey = normalize_maps(images[i][None])[0].mean(-1)
          ax.imshow(grey, cmap='gray', vmin=0, vmax=1)
          ax.imshow(heat, cmap=cmap, alpha=alpha, vmin=0, vmax=1)
        else:
          ax.imshow(heat, cmap=cmap, vmin=0, vmax=1)
      if i == 0:
        ax.set_title(name, fontsize=9)
  axes[0, 0].set_title('input', fontsize=9)
  for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
  return plots.save(fig, path)


def plot_feature_maps(maps, path, title: str = '', max_maps: int = 64, ncols: int | None = None) -> str:
  """The feature maps (h, w, K) of one image, one grey tile per channel (each min-max normalised)."""
  from jaxdl import plots  # pylint: disable=g-import-not-at-top
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  m = np.moveaxis(np.asarray(maps), -1, 0)[:max_maps]
  m = normalize_maps(m)
  nrows, ncols = _grid(len(m), ncols)
  fig, axes = plt.subplots(nrows, ncols, figsize=(1.1 * ncols, 1.1 * nrows + (0.4 if title else 0)), squeeze=False)
  for i, ax in enumerate(axes.ravel()):
    ax.axis('off')
    if i < len(m):
      ax.imshow(m[i], cmap='gray', vmin=0, vmax=1, interpolation='nearest')
  if title:
    fig.suptitle(title)
  return plots.save(fig, path)
