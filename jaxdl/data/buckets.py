"""Variable-length examples (token sequences, audio): padded batches in a few length buckets.

Chapters 4 and 5 feed sequences of different lengths. A jit-compiled step compiles once per input shape, so a batch
is zero-padded to the smallest of a few *bucket* lengths that holds its longest example: a handful of compilations
per run instead of one per length, and little padding because batches group examples of similar length.

`RaggedSource` holds the examples. Its *ragged* fields have a variable leading axis (one length per example); the
others have one shape. A padded batch has, for a ragged field `k`: `k` [B, L, ...] (zeros past each example's end:
PAD = 0 for token ids) and `k_paddings` [B, L] float32, 1 at padded positions (lingvo's and AlgoPerf's convention,
which jaxdl.nn.recurrent and jaxdl.speech take as they are).

Batching stays a pure function of (seed, epoch, step), which is what makes resume exact:
- training (`train_plan`): each epoch permutes the examples (seeded by (seed, epoch)), sorts them by length inside
  windows of `window` batches, cuts full batches and shuffles the batches' order; the `n mod B` examples left over
  differ from epoch to epoch. SortaGrad (Amodei et al. 2015, §3.1) orders the first epoch's batches by length,
  shortest first. Global batch s is batch s mod nb of epoch s // nb;
- evaluation (`eval_plan`): every example once, sorted by length, the last batch filled by repeating the last
  example with mask 0.
Process p of P reads rows [p·B/P, (p+1)·B/P) of each global batch, padded to the bucket of the *global* batch, so
all processes agree on the shape.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from jaxdl.errors import UserError

PADDINGS_SUFFIX = '_paddings'


def default_buckets(lengths: Sequence[int], num_buckets: int = 6, multiple: int = 8) -> tuple[int, ...]:
  """Bucket lengths at evenly spaced quantiles of `lengths`, rounded up to a multiple of `multiple`; the last holds
  the longest example."""
  lengths = np.asarray(lengths)
  if lengths.size == 0:
    return (multiple,)
  qs = np.quantile(lengths, np.linspace(0, 1, num_buckets + 1)[1:], method='higher')
  return tuple(sorted({int(-(-max(int(q), 1) // multiple) * multiple) for q in qs}))


def bucket_length(length: int, buckets: Sequence[int]) -> int:
  """The smallest bucket >= length (buckets sorted ascending)."""
  i = int(np.searchsorted(np.asarray(buckets), length, side='left'))
  if i == len(buckets):
    raise ValueError(f'length {length} is longer than the largest bucket {buckets[-1]}')
  return int(buckets[i])


class RaggedSource:
  """An in-memory split of variable-length examples, random access (Grain's protocol) and by padded batch.

  fields: name -> a sequence of per-example arrays. Fields named in `buckets` are ragged (variable first axis,
  padded to those lengths; None = `default_buckets`), the others are stacked as they are. `length_key` (default:
  the first ragged field) orders and groups examples. `references`: optional per-example strings (e.g. the reference
  transcript or translation) that generating evaluation compares its output with.
  """

  in_memory = True

  def __init__(self, fields: Mapping[str, Sequence[np.ndarray]], buckets: Mapping[str, Sequence[int] | None], *,
               length_key: str | None = None, references: Sequence[str] | None = None, name: str = 'dataset'):
    if not buckets:
      raise ValueError('RaggedSource needs at least one ragged field (a key of `buckets`)')
    n = {len(v) for v in fields.values()}
    if len(n) != 1:
      raise ValueError(f'fields have different numbers of examples: { {k: len(v) for k, v in fields.items()} }')
    self.n = n.pop()
    self.ragged = tuple(buckets)
    missing = [k for k in self.ragged if k not in fields]
    if missing:
      raise ValueError(f'bucketed fields {missing} are not fields ({list(fields)})')
    self.fields = {k: [np.asarray(x) for x in v] if k in self.ragged else np.stack([np.asarray(x) for x in v])
                   for k, v in fields.items()}
    self.field_lengths = {k: np.array([len(x) for x in self.fields[k]], np.int64) for k in self.ragged}
    self.buckets = {}
    for k, b in buckets.items():
      lens = self.field_lengths[k]
      b = default_buckets(lens) if b is None else tuple(sorted(int(x) for x in b))
      if not b or b[0] < 1:
        raise UserError(f'buckets for {k!r} of {name} are {b!r}', 'positive lengths', 'fix config.data.buckets')
      if self.n and lens.max() > b[-1]:
        i = int(lens.argmax())
        raise UserError(f'example {i} of {name} has {k!r} of length {int(lens[i])}, longer than the largest bucket '
                        f'{b[-1]}', f'buckets up to at least {int(lens.max())}',
                        'add a larger bucket (config.data.buckets) or filter long examples (config.data.max_length)')
      self.buckets[k] = b
    self.length_key = length_key or self.ragged[0]
    self.lengths = self.field_lengths[self.length_key]
    if references is not None and len(references) != self.n:
      raise ValueError(f'{len(references)} references for {self.n} examples')
    self.references = None if references is None else list(references)

  def __len__(self) -> int:
    return self.n

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    return {k: v[i] for k, v in self.fields.items()}

  def pad_lengths(self, idx: np.ndarray) -> dict[str, int]:
    """field -> the bucket that holds the longest of the examples `idx` (pass the GLOBAL batch's indices)."""
    return {k: bucket_length(int(self.field_lengths[k][idx].max()) if len(idx) else 1, self.buckets[k])
            for k in self.ragged}

  def get_batch(self, idx: np.ndarray, pad_to: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """The examples `idx`, ragged fields zero-padded to `pad_to` (default: their own bucket) plus `k_paddings`."""
    idx = np.asarray(idx, np.int64)
    pad_to = pad_to or self.pad_lengths(idx)
    out = {}
    for k, v in self.fields.items():
      if k not in self.ragged:
        out[k] = v[idx]
        continue
      length = int(pad_to[k])
      first = v[0]
      arr = np.zeros((len(idx), length, *first.shape[1:]), first.dtype)
      pads = np.ones((len(idx), length), np.float32)
      for row, i in enumerate(idx):
        x = v[int(i)]
        arr[row, :len(x)] = x
        pads[row, :len(x)] = 0.0
      out[k], out[k + PADDINGS_SUFFIX] = arr, pads
    return out

  def __repr__(self) -> str:
    return f'RaggedSource({self.n} examples, buckets {self.buckets})'


def _chunks(order: np.ndarray, batch: int) -> np.ndarray:
  nb = len(order) // batch
  return order[:nb * batch].reshape(nb, batch)


def train_plan(lengths: np.ndarray, batch: int, seed: int, epoch: int, *, window: int = 50,
               sorta_grad: bool = False) -> np.ndarray:
  """[num_batches, batch] example indices of one training epoch, a pure function of (seed, epoch)."""
  n = len(lengths)
  rng = np.random.default_rng([seed, epoch, 17])
  perm = rng.permutation(n)
  if sorta_grad and epoch == 0:   # SortaGrad: the first epoch in order of length (ties in random order)
    return _chunks(perm[np.argsort(lengths[perm], kind='stable')], batch)
  w = max(1, int(window)) * batch
  grouped = np.concatenate([p[np.argsort(lengths[p], kind='stable')] for p in np.split(perm, range(w, n, w))])
  batches = _chunks(grouped, batch)
  return batches[rng.permutation(len(batches))]


def eval_plan(lengths: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray]:
  """(indices [nb, batch], mask [nb, batch]): every example once, by length; the tail repeats the last (mask 0)."""
  order = np.argsort(lengths, kind='stable')
  nb = -(-len(order) // batch)
  pos = np.arange(nb * batch)
  idx = order[np.minimum(pos, len(order) - 1)].reshape(nb, batch)
  return idx, (pos < len(order)).astype(np.float32).reshape(nb, batch)


class BucketedTrainBatches:
  """step -> this process's rows of global batch `step` (see the module docstring). Picklable for Grain."""

  def __init__(self, source: RaggedSource, global_batch: int, seed: int, process_index: int, process_count: int,
               shuffle: bool = True, sorta_grad: bool = False, window: int = 50):
    self.source, self.b, self.seed, self.shuffle = source, global_batch, seed, shuffle
    self.sorta_grad, self.window = sorta_grad, window
    local = global_batch // process_count
    self.lo, self.hi = process_index * local, (process_index + 1) * local
    self.batches_per_epoch = len(source) // global_batch
    self._plans: dict[int, np.ndarray] = {}

  def plan(self, epoch: int) -> np.ndarray:
    p = self._plans.get(epoch)
    if p is None:
      if self.shuffle:
        p = train_plan(self.source.lengths, self.b, self.seed, epoch, window=self.window, sorta_grad=self.sorta_grad)
      else:
        p = _chunks(np.argsort(self.source.lengths, kind='stable'), self.b)
      self._plans = {e: q for e, q in self._plans.items() if e >= epoch - 2}   # a few epochs are live at once
      self._plans[epoch] = p
    return p

  def global_indices(self, step: int) -> np.ndarray:
    epoch, j = divmod(int(step), self.batches_per_epoch)
    return self.plan(epoch)[j]

  def __call__(self, step: int) -> dict[str, np.ndarray]:
    idx = self.global_indices(step)
    return self.source.get_batch(idx[self.lo:self.hi], self.source.pad_lengths(idx))


class BucketedEvalBatches:
  """i -> this process's rows of eval batch i, with 'mask' and the example indices ('index') for references."""

  def __init__(self, source: RaggedSource, global_batch: int, process_index: int, process_count: int):
    self.source = source
    self.idx, self.mask = eval_plan(source.lengths, global_batch)
    local = global_batch // process_count
    self.lo, self.hi = process_index * local, (process_index + 1) * local

  def __len__(self) -> int:
    return len(self.idx)

  def __call__(self, i: int) -> dict[str, Any]:
    idx, mask = self.idx[int(i)], self.mask[int(i)]
    batch = self.source.get_batch(idx[self.lo:self.hi], self.source.pad_lengths(idx[mask > 0]))
    batch['mask'] = mask[self.lo:self.hi]
    batch['index'] = idx[self.lo:self.hi].astype(np.int32)
    return batch
