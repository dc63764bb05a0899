"""Speech recognition (course chapter 5): audio front end, CTC, decoding, language models, error rates."""
