"""Text models for post-processing captions, the other two recurrent shapes.

- :mod:`.sentiment`: many-to-one, a bidirectional GRU with attention pooling that
  reads a sentence and gives one label (``sentiment-rnn``);
- :mod:`.translation`: many-to-many, a GRU encoder-decoder with attention whose
  output is written by the same batched beam search as the captions (``translate-rnn``).

Both read byte-level subword units (:mod:`.tokenizer`), so no word is ever unknown,
and are stored as a folder of JSON + safetensors (:mod:`.model_folder`).
"""
