"""coco_captions (stock, needs data) on a tiny copy prepared by TFDS itself: a builder with the features of TFDS's
`coco_captions/2014` writes a few JPEGs with 5 captions each as ArrayRecord into a temporary data dir (no TensorFlow,
no network), and the dataset reads it as it would read the real one. Vocabulary, truncation, the BOS/EOS/PAD layout,
images against an independent decode + resize, references, determinism, the unprepared error, one captioner forward.
"""
import collections
import io
import re

import jax
import ml_collections
import numpy as np
import pytest

from jaxdl import data as data_lib
from jaxdl.errors import UserError
from jaxdl.text.vocab import BOS, EOS, PAD, UNK

tfds = pytest.importorskip('tensorflow_datasets')
from PIL import Image  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position

from jaxdl.data import coco_captions as coco  # noqa: E402  pylint: disable=wrong-import-position

# Word counts over the training captions are distinct for the top words: a 20, dog 12, on 8, the 6, grass 5, ...
TRAIN_CAPTIONS = [
    ['A dog on the grass.', 'a dog, on the grass', 'A brown dog.', 'A dog runs on the grass', 'a DOG on grass'],
    ['A cat on a sofa.', "A cat's tail", 'a dog and a cat', 'A cat on the mat', 'A small cat.'],
    ['A dog jumps over a very very long fence near a red barn in the evening sun', 'A dog on grass.', 'a dog',
     'A zebra!', 'a dog sleeps'],
    ['A dog and a ball', 'a dog plays', 'A dog on the lawn', 'A dog outside', 'A puppy.'],
]
VAL_CAPTIONS = [['A dog on a sofa.', 'A dog rests', 'a brown dog', 'A dog indoors', 'A sleepy dog'],
                ['An aardvark eats.', 'A cat eats', 'a cat', 'A cat and food', 'Food']]
TEST_CAPTIONS = [['A cat.', 'a cat', 'The cat', 'A cat sits', 'A kitten'], ['A dog.', 'a dog', 'The dog', 'Dogs', 'A']]
SIZES = [(20, 30), (24, 24), (30, 18), (17, 25)]      # (H, W): variable, like COCO


def _jpeg(rng, h, w, grey=False) -> bytes:
  yy, xx = np.mgrid[0:h, 0:w]
  p, q = rng.uniform(0, 1, (2, 3))          # a smooth colour ramp, different for every image
  img = (255 * (p * (yy / h)[..., None] + q * (xx / w)[..., None]) / (p + q)).astype(np.uint8)
  buf = io.BytesIO()
  Image.fromarray(img[..., 0] if grey else img).save(buf, format='JPEG', quality=95)
  return buf.getvalue()


def _records(captions, offset):
  rng = np.random.default_rng(offset)
  for i, caps in enumerate(captions):
    h, w = SIZES[i % len(SIZES)]
    yield i, {'image': _jpeg(rng, h, w, grey=(i == 1)), 'image/filename': f'COCO_{offset + i:012d}.jpg',
              'image/id': offset + i,
              'objects': {'id': [offset + i], 'area': [10], 'bbox': [tfds.features.BBox(0.1, 0.2, 0.5, 0.6)],
                          'label': [17], 'is_crowd': [False]},
              'captions': {'text': caps, 'id': [100 * (offset + i) + k for k in range(len(caps))]}}


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  """A tiny TFDS `coco_captions/2014` (version 1.1.0, TFDS's feature spec) prepared as ArrayRecord."""
  from tensorflow_datasets.core import registered  # pylint: disable=g-import-not-at-top
  with registered.skip_registration():
    class CocoCaptions(tfds.core.GeneratorBasedBuilder):  # pylint: disable=unused-variable
      VERSION = tfds.core.Version('1.1.0')
      BUILDER_CONFIGS = [tfds.core.BuilderConfig(name='2014')]

      def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(encoding_format='jpeg'), 'image/filename': tfds.features.Text(),
            'image/id': np.int64,
            'objects': tfds.features.Sequence({'id': np.int64, 'area': np.int64, 'bbox': tfds.features.BBoxFeature(),
                                               'label': tfds.features.ClassLabel(num_classes=80),
                                               'is_crowd': np.bool_}),
            'captions': tfds.features.Sequence({'text': np.str_, 'id': np.int64})}))

      def _split_generators(self, dl_manager):
        return {'train': self._generate_examples(TRAIN_CAPTIONS, 0), 'val': self._generate_examples(VAL_CAPTIONS, 100),
                'test': self._generate_examples(TEST_CAPTIONS, 200),
                'restval': self._generate_examples(TRAIN_CAPTIONS[:1], 300)}

      def _generate_examples(self, captions, offset):
        yield from _records(captions, offset)

  d = tmp_path_factory.mktemp('tfds')
  CocoCaptions(data_dir=str(d), file_format='array_record').download_and_prepare()
  return str(d)


KW = dict(image_size=16, vocab_size=6, max_caption_length=6)


@pytest.fixture(scope='module')
def ds(data_dir):
  data_lib._CACHE.clear()
  return data_lib.get_dataset({'name': 'coco_captions', 'data_dir': data_dir, **KW})


def _words(text):   # independent transcription of the tokenisation: lower case, strip punctuation but apostrophes
  return [w.strip("'") for w in re.sub(r"[^a-z0-9' ]", ' ', text.lower()).split() if w.strip("'")]


def test_vocabulary_keeps_the_most_frequent_training_words(ds):
  counts = collections.Counter(w for caps in TRAIN_CAPTIONS for c in caps for w in _words(c))
  top = [w for w, _ in sorted(counts.items(), key=lambda kv: -kv[1])[:6]]
  assert sorted(counts.values(), reverse=True)[5] > sorted(counts.values(), reverse=True)[6]   # no tie at the cut
  v = ds.vocabulary
  assert v.level == 'word' and v.tokens[:4] == ['<pad>', '<bos>', '<eos>', '<unk>'] and v.tokens[4:] == top
  assert ds.info.num_outputs == len(v) == 4 + 6 and ds.info.input_shape == (16, 16, 3)
  assert ds.info.split_sizes == {'train': 20, 'val': 2, 'test': 2}
  assert v.token_to_id('zebra') == UNK and v.token_to_id('aardvark') == UNK   # rare / eval-only words
  assert coco.caption_words("A man's hat, on a TABLE.") == ["a", "man's", 'hat', 'on', 'a', 'table']


def test_training_pairs_truncation_and_teacher_forcing_layout(ds):
  src = ds.source('train')
  order = list(dict.fromkeys(src.image_ids.tolist()))                # TFDS shuffles the records when preparing
  assert sorted(order) == [0, 1, 2, 3]
  np.testing.assert_array_equal(src.image_ids, np.repeat(order, 5))   # every (image, caption) pair
  flat = [c for i in order for c in TRAIN_CAPTIONS[i]]
  assert src.references == [' '.join(_words(c)) for c in flat]          # untruncated
  for i, caption in enumerate(flat):
    words = _words(caption)[:6]
    ex = src[i]
    ids = [ds.vocabulary.token_to_id(w) for w in words]
    np.testing.assert_array_equal(ex['targets'], ids + [EOS])
    np.testing.assert_array_equal(ex['decoder_inputs'], [BOS] + ids)
  assert len(src[flat.index(TRAIN_CAPTIONS[2][0])]['targets']) == 7   # 16 words cut to 6, + EOS
  b = src.get_batch(np.arange(20))
  t, d, pads = b['targets'], b['decoder_inputs'], b['targets_paddings']
  assert t.shape == d.shape == (20, 8) and t.dtype == d.dtype == np.int32 and pads.dtype == np.float32
  n = (1 - pads).sum(1).astype(int)
  np.testing.assert_array_equal(n, [len(_words(c)[:6]) + 1 for c in flat])
  np.testing.assert_array_equal(d[:, 0], BOS)
  np.testing.assert_array_equal(t[np.arange(20), n - 1], EOS)
  np.testing.assert_array_equal(d[:, 1:] * (1 - pads[:, 1:]), t[:, :-1] * (1 - pads[:, 1:]))
  assert (t[pads > 0] == PAD).all() and (d[pads > 0] == PAD).all()
  np.testing.assert_array_equal(b['targets_paddings'], b['decoder_inputs_paddings'])


def test_images_are_decoded_and_resized_to_the_square(ds):
  src = ds.source('train')
  rows = [int(np.flatnonzero(src.image_ids == i)[0]) for i in range(4)]   # the first caption of images 0..3
  b = src.get_batch(np.array(rows + [rows[1] + 4]))
  x = b['inputs']
  assert x.shape == (5, 16, 16, 3) and x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
  np.testing.assert_array_equal(x[4], x[1])                           # every caption of an image carries it
  np.testing.assert_array_equal(x[1], src[rows[1]]['inputs'])
  rng = np.random.default_rng(0)
  for i in range(4):   # an independent decode + antialiased linear resize (jax.image)
    full = np.asarray(Image.open(io.BytesIO(_jpeg(rng, *SIZES[i], grey=(i == 1)))).convert('RGB'), np.float32) / 255
    ref = np.asarray(jax.image.resize(full, (16, 16, 3), 'linear', antialias=True))
    assert np.abs(x[i] - ref).mean() < 0.01 and np.abs(x[i] - ref).max() < 0.06, i
    assert all(np.abs(x[j] - ref).mean() > 0.03 for j in range(4) if j != i)   # and not like the others
  assert np.allclose(x[1][..., 0], x[1][..., 1])                      # the greyscale JPEG becomes grey RGB


def test_eval_splits_one_example_per_image_with_all_captions_as_references(ds):
  from jaxdl.train.generation import GENERATION_METRICS  # pylint: disable=g-import-not-at-top
  src = ds.source('val')
  caps = [VAL_CAPTIONS[i - 100] for i in src.image_ids]
  assert sorted(src.image_ids) == [100, 101]
  assert src.references == [[' '.join(_words(c)) for c in cs] for cs in caps]
  batch = next(iter(data_lib.eval_batches(ds, 'val', global_batch_size=4)))
  assert batch['inputs'].shape == (4, 16, 16, 3) and batch['mask'].tolist() == [1, 1, 0, 0]
  for r in range(2):
    i = int(batch['index'][r])
    first = ' '.join(w if w in ds.vocabulary else '<unk>' for w in _words(caps[i][0]))
    assert ds.vocabulary.decode(batch['targets'][r]) == first             # teacher forcing: the first caption
  # the trainer's generating evaluation scores against every reference of an image
  exact, bleu = GENERATION_METRICS['exact_match'][0], GENERATION_METRICS['bleu'][0]
  dog = int(np.flatnonzero(src.image_ids == 100)[0])
  hyps = lambda a, b: [a, b] if dog == 0 else [b, a]
  assert exact(hyps('a sleepy dog', 'a cat'), src.references) == 1.0
  assert exact(hyps('a sleepy cat', 'a cat'), src.references) == 0.5
  assert bleu(hyps('a dog on a sofa', 'a cat and food'), src.references) == pytest.approx(100.0)


def test_deterministic_restval_and_max_examples(data_dir, ds):
  again = coco.coco_captions(data_dir=data_dir, **KW)
  assert again.vocabulary == ds.vocabulary
  for split in ('train', 'val', 'test'):
    a, b = ds.source(split).get_batch(np.arange(2)), again.source(split).get_batch(np.arange(2))
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])
  more = coco.coco_captions(data_dir=data_dir, use_restval=True, cache=True, **KW)
  train = more.source('train')
  assert more.info.split_sizes['train'] == 25 and train.image_ids[20:].tolist() == [300] * 5
  assert train.references[20:] == [' '.join(_words(c)) for c in TRAIN_CAPTIONS[0]]
  restval_image = np.asarray(Image.open(io.BytesIO(_jpeg(np.random.default_rng(300), *SIZES[0]))), np.float32) / 255
  ref = np.asarray(jax.image.resize(restval_image, (16, 16, 3), 'linear', antialias=True))
  assert np.abs(train[22]['inputs'] - ref).mean() < 0.01                  # restval's own image (cached)
  np.testing.assert_array_equal(train.get_batch(np.arange(25))['inputs'][:20],
                                ds.source('train').get_batch(np.arange(20))['inputs'])
  few = coco.coco_captions(data_dir=data_dir, max_examples=1, **KW)
  assert few.info.split_sizes == {'train': 5, 'val': 1, 'test': 1}


def test_unprepared_dataset_is_one_line_with_the_prepare_command(tmp_path, capsys):
  data_lib._CACHE.clear()
  with pytest.raises(UserError) as e:
    data_lib.get_dataset({'name': 'coco_captions', 'data_dir': str(tmp_path)})
  msg = str(e.value)
  assert 'not prepared' in msg and '\n' not in msg and str(tmp_path) in msg
  assert ('python -m tensorflow_datasets.scripts.download_and_prepare --datasets=coco_captions '
          f'--file_format=array_record --data_dir={tmp_path}') in msg
  with pytest.raises(UserError, match='vocab_size'):
    coco.coco_captions(data_dir=str(tmp_path), vocab_size=0)
  # the needs-data command of experiments/captioning.py: one line on stderr, exit 2, nothing written
  from jaxdl import cli  # pylint: disable=g-import-not-at-top
  from helpers import REPO  # pylint: disable=g-import-not-at-top
  code = cli.main(['train', f'--config={REPO / "experiments" / "captioning.py"}', '--config.data.name=coco_captions',
                   f'--config.data.data_dir={tmp_path}', f'--workdir={tmp_path / "run"}', '--quiet'])
  err = capsys.readouterr().err.strip()
  assert code == 2 and len(err.splitlines()) == 1 and 'Traceback' not in err, err
  assert '--datasets=coco_captions --file_format=array_record' in err and not (tmp_path / 'run').exists()


def test_show_and_tell_runs_on_a_batch(ds):
  from jaxdl.models import build_model  # pylint: disable=g-import-not-at-top
  model = build_model(ml_collections.ConfigDict({'name': 'show_and_tell', 'encoder_channels': (4, 8), 'embed_dim': 8,
                                                 'hidden_size': 12}), ds.info)
  b = next(data_lib.train_iterator(ds, 'train', global_batch_size=4, seed=0))
  variables = model.init(jax.random.key(0), b['inputs'], b['decoder_inputs'])
  logits = model.apply(variables, b['inputs'], b['decoder_inputs'])
  assert logits.shape == (4, b['targets'].shape[1], len(ds.vocabulary)) and np.isfinite(np.asarray(logits)).all()
