"""Text (course chapter 4): vocabularies, sequence decoding (greedy, sampling, beam search), BLEU, and sampling a
trained char-RNN run (`generate`, behind `jaxdl sample`)."""
