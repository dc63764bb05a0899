"""Text (course chapter 4): vocabularies, sequence decoding (greedy, sampling, beam search), BLEU."""
