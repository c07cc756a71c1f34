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
        if not 257 <= vocab_size <= 1_000_000:
            raise ScalingLabError(f"BPE vocab size must be in 257..1,000,000, got {vocab_size}")
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
        try:
            ids = self._tok.encode(text).ids
        except Exception as exc:  # noqa: BLE001 - e.g. WordLevel without its unk token (issue 30 R8)
            raise ScalingLabError(f"tokenizer {self.name} cannot encode the text ({str(exc)[:120]}): a "
                                  "WordLevel or WordPiece tokenizer needs its unknown-token entry") from None
        return np.asarray(ids, dtype=token_dtype(self.vocab_size))

    def decode(self, ids) -> str:
        return self._tok.decode([int(i) for i in ids])


END_TOKENS = ("<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>", "<|eot_id|>", "[SEP]")


def token_dtype(vocab_size: int):
    """uint16 shards up to 65,536 tokens, uint32 above."""
    return np.uint16 if vocab_size <= 65536 else np.uint32


def file_tokenizer(spec: str) -> BPETokenizer:
    """A user's Hugging Face `tokenizers` file: ``path/to/tokenizer.json`` or, as a run's spec records it,
    ``path#sha256:HEX12`` (then the file must still be the one the run was planned with). Its end-of-text
    token (one of END_TOKENS) separates documents; its name is ``hf<VOCAB>-<HEX12>`` (content, not path)."""
    import hashlib
    path, _, want = spec.partition("#sha256:")
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ScalingLabError(f"tokenizer file {path}: {exc.strerror or exc}") from None
    digest = hashlib.sha256(raw).hexdigest()[:12]
    if want and want != digest:
        raise ScalingLabError(f"tokenizer file {path} changed since the run was planned (sha256 {digest}, "
                              f"planned {want}): restore it or start a new run")
    try:
        from tokenizers import Tokenizer as HFTokenizer
        tok = HFTokenizer.from_str(raw.decode("utf-8"))
    except ImportError:
        raise ScalingLabError("a tokenizer.json needs the `tokenizers` library: pip install "
                              "'scalinglab[train]'") from None
    except Exception as exc:  # noqa: BLE001 - the library's own parse errors, as one line
        raise ScalingLabError(f"{path} is not a Hugging Face tokenizers file ({str(exc)[:120]})") from None
    ends = [t for t in END_TOKENS if tok.token_to_id(t) is not None]
    if not ends:
        raise ScalingLabError(f"{path} has no end-of-text token to separate documents (one of "
                              f"{', '.join(END_TOKENS)})")
    out = BPETokenizer(tok)
    out.eot = tok.token_to_id(ends[0])
    # ids at or past get_vocab_size() (a hand-edited or added-token vocab): the model's embedding must hold
    # every id (issue 30 R8: OverflowError in the shards, IndexError in the embedding)
    out.vocab_size = max(out.vocab_size, max(tok.get_vocab(with_added_tokens=True).values(), default=-1) + 1)
    out.name = f"hf{out.vocab_size}-{digest}"
    return out


def pin_tokenizer(name: str) -> str:
    """A tokenizer as a run's spec records it: a file is pinned by its content (``path#sha256:HEX12``)."""
    if name == "bytes" or (name.startswith("bpe") and name[3:].isdigit()) or "#sha256:" in name:
        return name
    return f"{Path(name).resolve()}#sha256:{file_tokenizer(name).name.split('-')[-1]}"


def get_tokenizer(name: str, corpus, cache_dir: Path) -> Tokenizer:
    """"bytes", or "bpe<VOCAB>" (e.g. bpe4096) trained on the corpus' train split, cached by fingerprint."""
    if name == "bytes":
        return ByteTokenizer()
    if name.startswith("bpe") and name[3:].isdigit():
        path = cache_dir / f"tokenizer-{corpus.fingerprint}-{name}.json"
        if path.exists():
            return BPETokenizer.load(path)
        return BPETokenizer.train((d.text for d in corpus.split("train")), int(name[3:]), path)
    if name.endswith(".json") or "#sha256:" in name:
        return file_tokenizer(name)
    raise ScalingLabError(f"unknown tokenizer {name!r}: use 'bytes', 'bpe<vocab size>' (e.g. bpe4096) or a "
                          "Hugging Face tokenizer.json")
