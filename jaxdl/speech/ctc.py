"""Connectionist temporal classification (CTC): the collapse map, the alpha recursion, and a safe training loss.

Course chapter 5, "When the alignment is missing: CTC" (Graves, Fernández, Gomez & Schmidhuber 2006). An alignment
π ∈ {blank, labels}^T maps to a labelling by the collapse map B (remove repeats, then blanks), and

  p(y|x) = Σ_{π: B(π) = y} Π_t p(π_t | x),

computed by the alpha (forward) recursion over the blank-extended label y' = (blank, y_1, blank, ..., y_L, blank).
`ctc_alpha` is that recursion written the way the notes write it (for reading and for figures),
`ctc_brute_force_log_prob` the literal sum over all K^T alignments (claim S1's check), and `ctc_loss` the training
loss: `optax.ctc_loss` made safe (clamped at 0; utterances with no valid alignment masked out with zero gradient).

Conventions follow optax / MLCommons AlgoPerf: batches are padded, `*_paddings` arrays are 1.0 at padded positions
and 0.0 at valid ones, and labels are right-padded.
"""
from __future__ import annotations

import functools
import itertools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl.errors import UserError

REDUCTIONS = ('none', 'mean', 'per_token', 'sum')
MAX_BRUTE_FORCE_ALIGNMENTS = 2 ** 20


# ----------------------------------------------------------------------------------------------------------------
# The collapse map B
# ----------------------------------------------------------------------------------------------------------------

def collapse(ids: Sequence[int], blank: int = 0) -> tuple[int, ...]:
  """B(π) for one alignment on the host: merge runs of equal ids, then drop blanks (Graves et al. 2006, §3.1).

  With blank '-': "hh-e-ll-lo" -> "hello" (the blank keeps the two l's apart), "aabb" -> "ab", "a-ab" -> "aab".
  """
  out = []
  prev = None
  for i in np.asarray(ids).reshape(-1).tolist():
    if i != prev and i != blank:
      out.append(int(i))
    prev = i
  return tuple(out)


def collapse_padded(ids: jax.Array, paddings: jax.Array, blank: int = 0) -> tuple[jax.Array, jax.Array]:
  """B applied to a batch of right-padded alignments with fixed shapes (jit-able).

  ids, paddings: (B, T) (or (T,)). Returns (ids_out, out_paddings) of the same shape: the collapsed labels moved to
  the front of each row (rest filled with `blank`) and their paddings (1.0 after the last kept label).
  """
  ids = jnp.asarray(ids)
  paddings = jnp.asarray(paddings)
  if ids.shape != paddings.shape or ids.ndim not in (1, 2):
    raise ValueError(f'collapse_padded: ids {ids.shape} and paddings {paddings.shape} must be equal, (B, T) or (T,)')
  if ids.ndim == 1:
    out, pad = collapse_padded(ids[None], paddings[None], blank)
    return out[0], pad[0]
  valid = paddings < 0.5
  prev = jnp.pad(ids[:, :-1], ((0, 0), (1, 0)), constant_values=-1)   # -1 never equals a label: t = 0 is kept
  keep = valid & (ids != blank) & (ids != prev)                           # remove repeats, then blanks
  # Stable compaction: the n-th kept id goes to column n; dropped ids are scattered out of range and discarded.
  dest = jnp.where(keep, jnp.cumsum(keep, axis=1) - 1, ids.shape[1])
  # per row (vmap: a scatter with a batch dimension, which GSPMD keeps sharded; explicit row indices would make
  # it all-gather a batch sharded over a ('data',) mesh)
  out = jax.vmap(lambda d, x: jnp.full_like(x, blank).at[d].set(x, mode='drop'))(dest, ids)
  count = jnp.sum(keep, axis=1, keepdims=True)
  out_paddings = (jnp.arange(ids.shape[1])[None, :] >= count).astype(paddings.dtype)
  return out, out_paddings


def min_frames(labels: jax.Array, label_paddings: jax.Array | None = None) -> jax.Array:
  """Fewest frames that can emit `labels`: L + (number of adjacent repeats), a blank must separate a repeat.

  labels: (L,) or (B, N) with `label_paddings` (B, N). Returns an int32 scalar or (B,) (jit-able).
  """
  labels = jnp.asarray(labels)
  if label_paddings is None:
    label_paddings = jnp.zeros(labels.shape, jnp.float32)
  label_paddings = jnp.asarray(label_paddings)
  valid = label_paddings < 0.5
  repeats = (labels[..., 1:] == labels[..., :-1]) & valid[..., 1:] & valid[..., :-1]
  return (jnp.sum(valid, axis=-1) + jnp.sum(repeats, axis=-1)).astype(jnp.int32)


# ----------------------------------------------------------------------------------------------------------------
# The alpha recursion (readable, for the notes and the figures)
# ----------------------------------------------------------------------------------------------------------------

def _extend(labels: jax.Array, blank: int) -> tuple[jax.Array, jax.Array]:
  """y' = (blank, y_1, blank, ..., y_N, blank) and, per position s, whether the skip s-2 -> s is allowed."""
  n = labels.shape[0]
  ext = jnp.full((2 * n + 1,), blank, labels.dtype).at[1::2].set(labels)
  prev2 = jnp.pad(ext, (2, 0), constant_values=blank)[:ext.shape[0]]   # y'_{s-2}
  # Graves et al. 2006, eq. 7: skip a blank only between two DIFFERENT labels.
  can_skip = (ext != blank) & (ext != prev2)
  return ext, can_skip


def _alpha_scan(log_probs, frame_valid, labels, num_labels, blank):
  """Log-space alpha table of one utterance; padded frames copy the previous row. Returns (log p(y|x), (T, S))."""
  ext, can_skip = _extend(labels, blank)
  neg_inf = jnp.array(-jnp.inf, log_probs.dtype)
  s_idx = jnp.arange(ext.shape[0])

  def shift(a, k):   # a[s - k], -inf before the start
    return jnp.concatenate([jnp.full((k,), neg_inf), a])[:a.shape[0]]

  # t = 1: start in the first blank or the first label (Graves et al. 2006, eqs. 5-6).
  alpha0 = jnp.where(s_idx < 2, log_probs[0, ext], neg_inf)
  alpha0 = jnp.where(frame_valid[0], alpha0, jnp.where(s_idx == 0, 0.0, neg_inf).astype(log_probs.dtype))

  def step(alpha, inputs):
    lp_t, valid_t = inputs
    # α_t(s) = [α_{t-1}(s) + α_{t-1}(s-1) + 1{skip} α_{t-1}(s-2)] · y_t(y'_s)   (eq. 7, in log space)
    stay_or_advance = jnp.logaddexp(alpha, shift(alpha, 1))
    prev = jnp.where(can_skip, jnp.logaddexp(stay_or_advance, shift(alpha, 2)), stay_or_advance)
    new = prev + lp_t[ext]
    new = jnp.where(valid_t, new, alpha)
    return new, new

  _, rest = jax.lax.scan(step, alpha0, (log_probs[1:], frame_valid[1:]))
  table = jnp.concatenate([alpha0[None], rest], axis=0)
  # p(y|x) = α_T(|y'|) + α_T(|y'| - 1): end in the last label or the trailing blank (eq. 8).
  last = table[-1]
  end = 2 * num_labels
  log_p = jnp.logaddexp(last[end], jnp.where(num_labels > 0, last[jnp.maximum(end - 1, 0)], neg_inf))
  return log_p, table


@functools.partial(jax.jit, static_argnames=('blank',))
def ctc_alpha(log_probs: jax.Array, labels: jax.Array, blank: int = 0) -> tuple[jax.Array, jax.Array]:
  """The CTC forward recursion for one utterance, as in the notes (Graves et al. 2006, eqs. 5-8, in log space).

  log_probs: (T, K) log-probabilities (log_softmax of the logits); labels: (L,) ints without blanks.
  Returns (log p(y|x), alpha) where alpha is the (T, 2L+1) table of log α_t(s) over the blank-extended label
  (-inf where no prefix alignment reaches s). log p(y|x) is -inf when T < min_frames(labels).
  """
  log_probs = jnp.asarray(log_probs)
  labels = jnp.asarray(labels, jnp.int32).reshape(-1)
  if log_probs.ndim != 2:
    raise ValueError(f'ctc_alpha: log_probs must be (T, K), got {log_probs.shape}')
  frame_valid = jnp.ones(log_probs.shape[:1], bool)
  return _alpha_scan(log_probs, frame_valid, labels, labels.shape[0], blank)


@functools.partial(jax.jit, static_argnames=('blank',))
def ctc_alpha_batch(log_probs: jax.Array, logit_paddings: jax.Array, labels: jax.Array, label_paddings: jax.Array,
                    blank: int = 0) -> tuple[jax.Array, jax.Array]:
  """`ctc_alpha` over a padded batch: (B, T, K), (B, T), (B, N), (B, N) -> (log p [B], alpha [B, T, 2N+1]).

  Padded frames repeat the previous alpha row; only positions s <= 2·L_b of row b are meaningful.
  """
  log_probs = jnp.asarray(log_probs)
  labels = jnp.asarray(labels, jnp.int32)
  frame_valid = jnp.asarray(logit_paddings) < 0.5
  num_labels = jnp.sum(jnp.asarray(label_paddings) < 0.5, axis=1)
  return jax.vmap(lambda lp, fv, y, n: _alpha_scan(lp, fv, y, n, blank))(log_probs, frame_valid, labels, num_labels)


def ctc_brute_force_log_prob(log_probs, labels, blank: int = 0,
                             max_alignments: int = MAX_BRUTE_FORCE_ALIGNMENTS) -> float:
  """log Σ_{π: B(π) = y} Π_t p(π_t) by enumerating all K^T alignments in NumPy (float64; small problems only)."""
  target = tuple(int(i) for i in np.asarray(labels).reshape(-1))
  table = all_labelling_log_probs(log_probs, blank=blank, max_alignments=max_alignments)
  return table.get(target, -math.inf)


def all_labelling_log_probs(log_probs, blank: int = 0,
                            max_alignments: int = MAX_BRUTE_FORCE_ALIGNMENTS) -> dict[tuple[int, ...], float]:
  """{labelling y: log p(y|x)} for every labelling with an alignment, by brute-force enumeration of K^T alignments.

  The exact answer that decoders approximate (the labellings' probabilities sum to 1 for normalised inputs).
  Raises ValueError when K^T exceeds `max_alignments`.
  """
  lp = np.asarray(log_probs, np.float64)
  if lp.ndim != 2:
    raise ValueError(f'log_probs must be (T, K), got {lp.shape}')
  num_frames, num_classes = lp.shape
  if num_classes ** num_frames > max_alignments:
    raise ValueError(f'brute force over K^T = {num_classes}^{num_frames} alignments exceeds {max_alignments}; '
                     'use ctc_alpha for this size')
  terms: dict[tuple[int, ...], list[float]] = {}
  frames = np.arange(num_frames)
  for path in itertools.product(range(num_classes), repeat=num_frames):
    terms.setdefault(collapse(path, blank), []).append(float(lp[frames, list(path)].sum()))
  return {y: float(np.logaddexp.reduce(np.asarray(v))) for y, v in terms.items()}


# ----------------------------------------------------------------------------------------------------------------
# The training loss
# ----------------------------------------------------------------------------------------------------------------

def _concrete(x) -> np.ndarray | None:
  """x as a NumPy array when it has a value now (eager call), None under jit tracing."""
  try:
    return np.asarray(x)
  except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
    return None


def _check_labels(labels, label_paddings, num_classes: int, blank: int) -> None:
  """User-data checks, done only when the arrays are concrete (outside jit)."""
  y, pad = _concrete(labels), _concrete(label_paddings)
  if y is None or pad is None:
    return
  if not np.all((pad == 0) | (pad == 1)):
    raise UserError('CTC label_paddings hold values other than 0 and 1', '1.0 at padded and 0.0 at valid labels',
                    'build paddings as (position >= length).astype(float)')
  if np.any(np.diff(pad, axis=1) < 0):
    raise UserError('CTC labels are not right-padded (a valid label follows a padded one)',
                    'each row: valid labels first, then padding', 'pad labels at the end')
  valid = y[pad == 0]
  if valid.size and (valid.min() < 0 or valid.max() >= num_classes):
    raise UserError(f'CTC labels outside [0, {num_classes}) (found {valid.min()}..{valid.max()})',
                    'label ids below the number of output classes', 'check the tokenizer and the model vocab size')
  if np.any(valid == blank):
    raise UserError(f'CTC labels contain the blank id {blank}', 'labels without blanks',
                    'shift label ids so the blank is not used, or pass the right blank=')


def ctc_loss(logits: jax.Array, logit_paddings: jax.Array, labels: jax.Array, label_paddings: jax.Array, *,
             blank: int = 0, reduction: str = 'mean', log_epsilon: float = -1e5) -> dict[str, jax.Array]:
  """CTC negative log-likelihood −log p(y|x) per utterance, from `optax.ctc_loss`, made safe for training.

  Args:
    logits: (B, T, K) unnormalised scores (log_softmax is applied); logit_paddings: (B, T), 1.0 = padded frame.
    labels: (B, N) ints (no blanks), right-padded; label_paddings: (B, N), 1.0 = padded label.
    blank: the blank class id. reduction: how 'reduced' is computed, one of REDUCTIONS.
    log_epsilon: optax's stand-in for log 0.

  Returns a dict. Per-utterance values (shape [B]), as the trainer's losses return them:
    'loss': −log p(y|x), clamped at 0 (float32 rounding can make it slightly negative, optax issue #1771),
            and 0 for infeasible utterances;
    'feasible': 1.0 where the valid frames can emit the label (T_b >= L_b + repeats_b, `min_frames`), else 0.0;
    'num_tokens': valid label count of feasible utterances (0 for infeasible ones);
  batch values (scalars):
    'num_infeasible': how many utterances were masked out;
    'reduced': 'none' -> the [B] losses; 'mean' -> Σ loss / #feasible; 'per_token' -> Σ loss / Σ num_tokens;
               'sum' -> Σ loss (empty denominators count as 1, so an all-infeasible batch gives 0).

  Infeasible utterances: optax returns about −log_epsilon (1e5) for them with a meaningless gradient, which would
  dominate the batch (axlearn PR #211 saw the same). They get loss 0 and an exactly zero gradient: the double-where
  trick feeds optax finite stand-in logits for them, so no inf/NaN (even from non-finite logits in those rows) can
  leak into the gradient through the final `where`. Feasible utterances whose loss is non-finite for another reason
  (non-finite logits) are NOT masked: that is a model/data bug and should show up in the loss, not be hidden.

  A trainer that averages 'loss' over the batch gets Σ loss / B, i.e. 'mean' times the feasible fraction (the mean
  of 'feasible'); use 'reduced' (or Σ loss / Σ feasible) when the exact per-feasible-utterance mean matters.
  """
  if reduction not in REDUCTIONS:
    raise UserError(f'unknown CTC reduction {reduction!r}', f'one of {", ".join(REDUCTIONS)}',
                    'set loss.reduction accordingly')
  logits = jnp.asarray(logits)
  logit_paddings = jnp.asarray(logit_paddings)
  labels = jnp.asarray(labels)
  label_paddings = jnp.asarray(label_paddings)
  if logits.ndim != 3 or logit_paddings.shape != logits.shape[:2]:
    raise ValueError(f'ctc_loss: logits (B, T, K) and logit_paddings (B, T) expected, got {logits.shape} and '
                     f'{logit_paddings.shape}')
  if labels.ndim != 2 or labels.shape != label_paddings.shape or labels.shape[0] != logits.shape[0]:
    raise ValueError(f'ctc_loss: labels and label_paddings (B, N) expected, got {labels.shape} and '
                     f'{label_paddings.shape} for B = {logits.shape[0]}')
  if not 0 <= blank < logits.shape[-1]:
    raise UserError(f'CTC blank id {blank} outside [0, {logits.shape[-1]})', 'a class id of the model output',
                    'pass blank= within the vocabulary')
  _check_labels(labels, label_paddings, logits.shape[-1], blank)

  num_frames = jnp.sum(logit_paddings < 0.5, axis=1)
  feasible = num_frames >= min_frames(labels, label_paddings)
  # Double where: infeasible rows get finite stand-in logits BEFORE optax (which gives them a finite ≈ −log_epsilon
  # loss), and the `where` below drops that loss, so their gradient is exactly 0 — never 0 · NaN.
  safe_logits = jnp.where(feasible[:, None, None], logits, jnp.zeros_like(logits))
  # optax.ctc_loss takes logits and applies log_softmax itself.
  per_seq = optax.ctc_loss(safe_logits, logit_paddings, labels, label_paddings, blank_id=blank,
                           log_epsilon=log_epsilon)
  per_seq = jnp.maximum(per_seq, 0.0)            # −log p >= 0 (optax #1771: float32 rounding)
  loss = jnp.where(feasible, per_seq, 0.0)
  mask = feasible.astype(loss.dtype)
  num_tokens = jnp.sum(label_paddings < 0.5, axis=1).astype(loss.dtype) * mask

  total = jnp.sum(loss)
  if reduction == 'none':
    reduced = loss
  elif reduction == 'mean':
    reduced = total / jnp.maximum(jnp.sum(mask), 1.0)
  elif reduction == 'per_token':
    reduced = total / jnp.maximum(jnp.sum(num_tokens), 1.0)
  else:
    reduced = total
  return {'loss': loss, 'feasible': mask, 'num_tokens': num_tokens,
          'num_infeasible': jnp.sum(1.0 - mask), 'reduced': reduced}
