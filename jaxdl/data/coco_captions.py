"""`coco_captions` (stock, needs data): MS COCO 2014 images with their human captions, in Karpathy & Fei-Fei (2015)'s
splits, for the captioning models of course chapter 4 (seed 000 "Generating text descriptions from images": show and
tell, Vinyals et al. 2015; show, attend and tell, Xu et al. 2015), read TF-free like the other stock sets.

TFDS `coco_captions` (catalogue: version 1.1.0, config `2014`; 37.61 GiB download, 18.83 GiB prepared; splits
'train' 82,783, 'val' 5,000, 'test' 5,000, 'restval' 30,504 images; features 'image' Image((None, None, 3), uint8,
JPEG), 'image/filename', 'image/id' int64, 'objects' Sequence({id, area, bbox, label, is_crowd}), 'captions'
Sequence({'text': string, 'id': int64}), at least 5 captions an image). Prepare it once (needs TensorFlow and the
network; `prepare_command('coco_captions')` of jaxdl/data/stock.py):
    pip install -e ".[tf]" && python -m tensorflow_datasets.scripts.download_and_prepare \
        --datasets=coco_captions --file_format=array_record
The TFDS builder's own code needs TensorFlow even to read (its feature spec uses tf.int64), so the prepared copy is
opened from its files (`builder_from_files`, the features from features.json) and read with `as_data_source`: a
record is a dict of numpy values, the captions {'text': [bytes, ...], 'id': [int64, ...]}; the image is read as its
JPEG bytes (`SkipDecoding`) and decoded here with PIL only when a batch needs it.

* Images: decoded to RGB (COCO has a few greyscale ones) and resized to `image_size`² (default 224, the notes'
  show-and-tell input) with PIL's bilinear filter (antialiased when shrinking; JPEG draft mode decodes at the
  smallest 1/2^k scale still >= that size), squashing the aspect ratio; batches hold float32 in [0, 1] like
  `captioned_shapes`. `cache=True` keeps the resized uint8 images of a split in memory after the first batch
  (3·image_size² bytes an image: 12.5 GB for 'train' at 224); `cache=False` (default) decodes each batch's images
  from the ArrayRecord files, in the pipeline's prefetch threads.
* Captions: lower-cased words (`caption_words`: runs of letters/digits, with inner apostrophes such as "it's";
  punctuation dropped, as in Karpathy's preprocessing). The vocabulary (jaxdl.text.vocab.Vocabulary, PAD 0, BOS 1,
  EOS 2, UNK 3) is the `vocab_size` (default 10,000, Xu et al.) most frequent words of the training captions (ties:
  first seen first) after the four specials; other words are UNK. A caption is truncated to its first
  `max_caption_length` (default 20) words; `targets` = words + EOS, `decoder_inputs` = BOS + words, padded to
  multiples of `bucket_width` (the layout of `captioned_shapes`).
* Training split 'train' (TFDS 'train', plus 'restval' with `use_restval=True`: Karpathy's 113,287 training
  images): one example per (image, caption) pair, all of them, in record order (TFDS's shuffled order, fixed by
  the prepared files: deterministic; an epoch sees every caption once), its reference the caption itself. Each
  split's `image_ids` give every example's COCO image id.
* Evaluation splits 'val' and 'test': one example per image; the teacher-forced loss uses its FIRST caption, and
  its reference is the list of ALL its captions (untruncated), which the trainer's generating evaluation passes
  unchanged to corpus BLEU (sacrebleu, multi-reference) and exact match (equal to any of them).
* Building the dataset reads every record of each split once, for its captions (a record carries its JPEG, so
  that is the whole prepared split, ≈ 13 GB for 'train'); `max_examples` > 0 reads only the first that many
  records (images) of each TFDS split (quick runs). Decoding + resizing a 640×480 JPEG to 224² takes ≈ 3 ms.
An unprepared copy, one in another format or a missing split is a one-line UserError with the prepare command.
"""
from __future__ import annotations

import io
import re
import threading

import numpy as np

from jaxdl.data import Dataset, DatasetInfo, stock
from jaxdl.data.buckets import RaggedSource
from jaxdl.errors import UserError
from jaxdl.registry import DATASETS
from jaxdl.text.vocab import SPECIALS, Vocabulary

TFDS_NAME = 'coco_captions'
TFDS_CONFIG = '2014'                 # the builder's only config
_CHUNK = 256                         # records per `__getitems__` call
_WORD = re.compile(r"\w+(?:'\w+)*")


def caption_words(text: str | bytes) -> list[str]:
  """Lower-cased words of a caption, punctuation dropped ("A man's hat, on a table." -> a man's hat on a table)."""
  if isinstance(text, (bytes, np.bytes_)):
    text = bytes(text).decode('utf-8')
  return _WORD.findall(str(text).lower())


def square_image(image, size: int) -> np.ndarray:
  """uint8 [size, size, 3] from JPEG/PNG bytes or a uint8 array [H, W(, C)] (RGB; PIL bilinear resize)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if isinstance(image, (bytes, bytearray, np.bytes_)):
    im = Image.open(io.BytesIO(bytes(image)))
    im.draft('RGB', (size, size))      # JPEG: decode at a reduced scale that is still >= size (fast)
  else:
    a = np.asarray(image, np.uint8)
    im = Image.fromarray(a[..., 0] if a.ndim == 3 and a.shape[-1] == 1 else a)
  im = im.convert('RGB')
  if im.size != (size, size):
    im = im.resize((size, size), Image.Resampling.BILINEAR)
  return np.asarray(im, np.uint8)


def open_split(split: str, data_dir: str = ''):
  """The prepared TFDS `coco_captions` split as a random-access source of records (image as JPEG bytes), without
  TensorFlow; an unprepared or unreadable copy is a one-line UserError naming the prepare command."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.core import read_only_builder  # pylint: disable=g-import-not-at-top
  where = stock._data_dir(data_dir)  # pylint: disable=protected-access
  shown = where or '~/tensorflow_datasets'
  cmd = stock.prepare_command(TFDS_NAME, data_dir)
  fix = f'prepare it once with: {cmd}'
  try:
    builder = read_only_builder.builder_from_files(f'{TFDS_NAME}/{TFDS_CONFIG}', data_dir=where)
  except Exception as e:  # noqa: BLE001 — DatasetNotFoundError, or a damaged dataset_info.json
    raise UserError(f'stock dataset {TFDS_NAME!r} is not prepared in {shown}', 'an ArrayRecord copy prepared by TFDS',
                    fix) from e
  fmt = str(getattr(builder.info.file_format, 'value', builder.info.file_format))
  if fmt != 'array_record':
    raise UserError(f'stock dataset {TFDS_NAME!r} in {shown} is prepared as {fmt}', 'the array_record format '
                    '(random access without TensorFlow)', f'prepare it again with: {cmd}')
  if split not in builder.info.splits:
    raise UserError(f'stock dataset {TFDS_NAME!r} in {shown} has no split {split!r}',
                    'one of: ' + ', '.join(builder.info.splits), fix)
  try:
    return builder.as_data_source(split, decoders={'image': tfds.decode.SkipDecoding()})
  except Exception as e:  # noqa: BLE001
    raise UserError(f'stock dataset {TFDS_NAME!r} (split {split!r}) in {shown} could not be read: '
                    f'{type(e).__name__}: {e}'.replace('\n', ' '), 'a complete ArrayRecord copy', fix) from e


def _captions(rec, split: str, i: int) -> list[str]:
  caps = rec.get('captions') if isinstance(rec, dict) else None
  texts = caps.get('text') if isinstance(caps, dict) else None
  if texts is None or 'image' not in rec:
    raise UserError(f'{TFDS_NAME} {split} record {i} has fields {sorted(rec) if isinstance(rec, dict) else rec!r}',
                    "TFDS coco_captions records ('image', 'captions': {'text', 'id'})", 'prepare the dataset again')
  return [' '.join(caption_words(t)) for t in np.asarray(texts, object).reshape(-1)]


class CocoImages:
  """The images of one or more TFDS splits (concatenated), resized on demand: `get(ids)` -> uint8 [k, S, S, 3]."""

  def __init__(self, parts: list[tuple[object, int]], size: int, cache: bool):
    self.parts, self.size, self.cache = [src for src, _ in parts], int(size), bool(cache)
    self.offsets = np.cumsum([0] + [n for _, n in parts])
    self._all: np.ndarray | None = None
    self._lock = threading.Lock()

  def __getstate__(self):
    return {k: v for k, v in self.__dict__.items() if k not in ('_lock', '_all')}

  def __setstate__(self, d):
    self.__dict__.update(d, _lock=threading.Lock(), _all=None)

  def __len__(self) -> int:
    return int(self.offsets[-1])

  def _read(self, ids: np.ndarray) -> np.ndarray:
    out = np.empty((len(ids), self.size, self.size, 3), np.uint8)
    part = np.searchsorted(self.offsets, ids, side='right') - 1
    for p in np.unique(part):
      rows = np.flatnonzero(part == p)
      for row, rec in zip(rows, stock.read_records(self.parts[p], ids[rows] - self.offsets[p])):
        out[row] = square_image(rec['image'], self.size)
    return out

  def get(self, ids) -> np.ndarray:
    ids = np.asarray(ids, np.int64).reshape(-1)
    if not self.cache:
      return self._read(ids)
    if self._all is None:
      with self._lock:   # Grain's prefetch threads may ask at the same time
        if self._all is None:
          every = np.arange(len(self))
          a = np.concatenate([self._read(every[s:s + _CHUNK]) for s in range(0, len(self), _CHUNK)])
          a.setflags(write=False)
          self._all = a
    return self._all[ids]


class CaptionSource(RaggedSource):
  """A RaggedSource of caption ids whose examples point at images (`image_index`); batches carry the images as
  'inputs' float32 [B, S, S, 3] in [0, 1] instead of the index; `image_ids` are the examples' COCO image ids."""

  def __init__(self, images: CocoImages, image_index, targets, decoder_inputs, buckets, references, name: str,
               image_ids=None):
    super().__init__({'image_index': np.asarray(image_index, np.int64), 'targets': targets,
                      'decoder_inputs': decoder_inputs}, {'targets': buckets, 'decoder_inputs': buckets},
                     references=references, name=name)
    self.images = images
    self.image_ids = None if image_ids is None else np.asarray(image_ids, np.int64)   # COCO id of each example
    self.in_memory = images.cache   # uncached images are decoded per batch: the pipeline prefetches in threads

  def _images(self, ids) -> np.ndarray:
    return np.divide(self.images.get(ids), np.float32(255), dtype=np.float32)

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    r = super().__getitem__(i)
    return {'inputs': self._images([r.pop('image_index')])[0], **r}

  def get_batch(self, idx, pad_to=None) -> dict[str, np.ndarray]:
    b = super().get_batch(idx, pad_to)
    return {'inputs': self._images(b.pop('image_index')), **b}


def _check_int(name: str, value, lo: int) -> None:
  if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= lo):
    raise UserError(f'config.data.{name}={value!r} for dataset coco_captions', f'an integer >= {lo}',
                    f'fix --config.data.{name}')


def _read_split(split: str, data_dir: str, max_examples: int) -> tuple[object, list[list[str]], list[int]]:
  """(the split's source, the tokenised captions of its first images, their COCO image ids)."""
  src = open_split(split, data_dir)
  n = len(src) if not max_examples else min(int(max_examples), len(src))
  caps, ids = [], []
  for start in range(0, n, _CHUNK):
    recs = stock.read_records(src, range(start, min(n, start + _CHUNK)))
    caps += [_captions(r, split, start + j) for j, r in enumerate(recs)]
    ids += [int(r.get('image/id', -1)) for r in recs]
  return src, caps, ids


@DATASETS.register('coco_captions', source='TFDS coco_captions (prepare once; see jaxdl/data/coco_captions.py)',
                   stock=True, description='MS COCO 2014 images + 5 captions each (Karpathy splits) via TFDS '
                                           'ArrayRecord, TF-free; word vocabulary from the training captions')
def coco_captions(*, data_dir: str = '', image_size: int = 224, vocab_size: int = 10000, max_caption_length: int = 20,
                  max_examples: int = 0, use_restval: bool = False, bucket_width: int = 8,
                  cache: bool = False) -> Dataset:
  """MS COCO captions (module docstring): 'train' one example per (image, caption), 'val' / 'test' one per image
  with all its captions as references. data_dir: TFDS data dir ('' = $TFDS_DATA_DIR or ~/tensorflow_datasets)."""
  if not (isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool) and 8 <= image_size <= 1024):
    raise UserError(f'config.data.image_size={image_size!r} for dataset coco_captions', 'an integer in [8, 1024]',
                    'fix --config.data.image_size')
  for key, v, lo in (('vocab_size', vocab_size, 1), ('max_caption_length', max_caption_length, 1),
                     ('max_examples', max_examples, 0), ('bucket_width', bucket_width, 1)):
    _check_int(key, v, lo)
  tfds_splits = {'train': ('train', 'restval') if use_restval else ('train',), 'val': ('val',), 'test': ('test',)}
  read = {s: _read_split(s, data_dir, max_examples) for parts in tfds_splits.values() for s in parts}
  train_caps = [c for s in tfds_splits['train'] for caps in read[s][1] for c in caps]
  if not train_caps:
    raise UserError(f'{TFDS_NAME} train: no captions read', 'captioned images', 'check the prepared data')
  vocab = Vocabulary.from_corpus(train_caps, 'word', max_size=int(vocab_size) + len(SPECIALS))
  up = lambda v: int(-(-v // bucket_width) * bucket_width)
  buckets = tuple(range(bucket_width, up(max_caption_length + 1) + 1, bucket_width))

  def encode(caption: str) -> np.ndarray:
    return vocab.encode(caption.split()[:max_caption_length]).astype(np.int32)

  sources = {}
  for split, parts in tfds_splits.items():
    images = CocoImages([(read[s][0], len(read[s][1])) for s in parts], image_size, cache)
    per_image = [caps for s in parts for caps in read[s][1]]
    coco_ids = [i for s in parts for i in read[s][2]]
    if split == 'train':      # every (image, caption) pair
      index = [i for i, caps in enumerate(per_image) for _ in caps]
      texts = [c for caps in per_image for c in caps]
      refs: list = texts
    else:                     # one example per image: its first caption; all of them as references
      keep = [i for i, caps in enumerate(per_image) if caps]
      index, texts, refs = keep, [per_image[i][0] for i in keep], [per_image[i] for i in keep]
    if not index:
      raise UserError(f'{TFDS_NAME} {split}: no captioned image read', 'captioned images', 'check the prepared data')
    ids = [encode(t) for t in texts]
    sources[split] = CaptionSource(images, index, [np.append(w, vocab.eos_id).astype(np.int32) for w in ids],
                                   [np.insert(w, 0, vocab.bos_id).astype(np.int32) for w in ids], buckets, refs,
                                   f'coco_captions {split}', [coco_ids[i] for i in index])
  info = DatasetInfo('coco_captions', 'classification', (int(image_size), int(image_size), 3), len(vocab),
                     {k: len(v) for k, v in sources.items()})
  return Dataset(info, sources, vocabulary=vocab)
