"""Tokenizers: raw bytes (vocab 256, the CPU default) or byte-level BPE trained with `tokenizers`.

Document boundaries: the byte tokenizer uses byte 0 (NUL never occurs in text); BPE has <|endoftext|>.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from ..atomic import writing
from ..errors import ScalingLabError


class Tokenizer(Protocol):
    name: str
    vocab_size: int
    eot: int

    def encode(self, text: str) -> np.ndarray: ...

    def decode(self, ids) -> str: ...


class ByteTokenizer:
    name = "bytes"
    vocab_size = 256
    eot = 0

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint16)

    def decode(self, ids) -> str:
        return bytes(int(i) for i in ids if int(i) != self.eot).decode("utf-8", errors="replace")


class BPETokenizer:
    """Byte-level BPE from the `tokenizers` library, trained on the train split and cached by path."""

    def __init__(self, tok):
        self._tok = tok
        self.vocab_size = tok.get_vocab_size()
        self.eot = tok.token_to_id("<|endoftext|>")
        self.name = f"bpe{self.vocab_size}"

    @classmethod
    def train(cls, texts, vocab_size: int, path: Path) -> "BPETokenizer":
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers
        if not 257 <= vocab_size <= 65535:
            raise ScalingLabError(f"BPE vocab size must be in 257..65535 (uint16 shards), got {vocab_size}")
        tok = HFTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False)
        tok.train_from_iterator(texts, trainer=trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        with writing(path) as tmp:
            tok.save(str(tmp))
        return cls(tok)

    @classmethod
    def load(cls, path: Path) -> "BPETokenizer":
        from tokenizers import Tokenizer as HFTokenizer
        return cls(HFTokenizer.from_file(str(path)))

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self._tok.encode(text).ids, dtype=np.uint16)

    def decode(self, ids) -> str:
        return self._tok.decode([int(i) for i in ids])


def get_tokenizer(name: str, corpus, cache_dir: Path) -> Tokenizer:
    """"bytes", or "bpe<VOCAB>" (e.g. bpe4096) trained on the corpus' train split, cached by fingerprint."""
    if name == "bytes":
        return ByteTokenizer()
    if name.startswith("bpe") and name[3:].isdigit():
        path = cache_dir / f"tokenizer-{corpus.fingerprint}-{name}.json"
        if path.exists():
            return BPETokenizer.load(path)
        return BPETokenizer.train((d.text for d in corpus.split("train")), int(name[3:]), path)
    raise ScalingLabError(f"unknown tokenizer {name!r}: use 'bytes' or 'bpe<vocab size>', e.g. bpe4096")
