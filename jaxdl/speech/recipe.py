"""The notes' DeepSpeech2 training recipe as config (seed 000 "CTC TRAINING" and the course lab; Amodei et al. 2016,
§3.1 and §5): CTC loss, Nesterov momentum 0.99, learning rate 1e-4 × 0.8 after every epoch, global-norm clip 400,
SortaGrad (the first epoch shortest utterances first), an evaluation and a checkpoint every epoch, CER and WER
decoded by the trainer's generating evaluation. `deepspeech2_paper` (LibriSpeech) and `deepspeech2_lab` (Common
Voice) differ only in model, data and the metric that picks the best checkpoint.
"""
from __future__ import annotations


def ds2_recipe(c, *, steps_per_epoch: int, epochs: int, batch_size: int, best_metric: str):
  """Sets the recipe's loss, optimiser, schedule and train/decode sections on config `c` (in place) and returns it."""
  c.data.sorta_grad = True
  c.loss.name = 'ctc'
  c.optimizer.name = 'nesterov'
  c.optimizer.momentum = 0.99
  c.optimizer.learning_rate = 1e-4
  c.optimizer.schedule = 'step'                    # × 0.8 at every epoch
  c.optimizer.schedule_kwargs = {'step_size': steps_per_epoch, 'gamma': 0.8}
  c.optimizer.clip_global_norm = 400.0
  c.train.batch_size = batch_size
  c.train.num_steps = epochs * steps_per_epoch
  c.train.eval_every = steps_per_epoch
  c.train.checkpoint_every = steps_per_epoch
  c.train.log_every = 50
  c.train.best_metric = best_metric
  c.train.best_mode = 'min'
  c.decode.metrics = ('cer', 'wer')
  return c
