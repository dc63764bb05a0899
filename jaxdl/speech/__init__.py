"""Speech recognition (course chapter 5): audio front end, CTC, decoding, language models, error rates.

Modules: `features` (STFT, mel, MFCC, normalisation), `augment` (SpecAugment, noise, speed), `audio` (reading and
writing audio files), `espeak` (the built-in speech synthesiser), `ctc` (the loss, the alpha recursion, collapse),
`decoding` (best path, prefix beam search with LM fusion, host and jit), `lm` (n-gram language models, ARPA),
`error_rates` (WER, CER).
"""
from jaxdl.speech.decoding import best_path, prefix_beam_search

__all__ = ['best_path', 'prefix_beam_search']
