"""Token shards: each split tokenized once into a memmap (uint16, or uint32 for vocabularies over 65,536),
named by corpus fingerprint and tokenizer."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import write_text, writing
from .corpus import (
    MAX_SOURCES,
    Corpus,
    embedded_fingerprint,
    is_embedded,
    load_corpus,
    noisy_percent,
    source_of,
)
from .tokenizer import get_tokenizer, token_dtype


def default_cache_dir() -> Path:
    return Path(os.environ.get("SCALINGLAB_CACHE", Path.home() / ".cache" / "scalinglab"))


@dataclass(frozen=True)
class Shards:
    """Memory-mapped train and validation tokens plus what bits-per-byte needs."""

    train: np.ndarray
    validation: np.ndarray
    vocab_size: int
    tokenizer: str
    fingerprint: str
    bytes_per_token: float  # validation bytes / validation tokens
    # per-source validation losses: each validation token's source (an index into ``sources``), when the
    # corpus has 2..MAX_SOURCES sources (corpus.source_of); else None and ()
    validation_source: np.ndarray | None = None
    sources: tuple[str, ...] = ()

    def bits_per_byte(self, loss_nats: float) -> float:
        return float(loss_nats / np.log(2) / self.bytes_per_token)


def _has_sources(meta_path: Path) -> bool:
    """meta.json reads as an object with its validation source map (an empty, torn or older file does not:
    the cache is built again, never a JSONDecodeError; issue 30 R11)."""
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "sources" in meta


def _intact(out: Path, meta_path: Path) -> bool:
    """Every shard of the cache has the size and checksum its meta.json records (a cache written before
    checksums were recorded is checked by size)."""
    try:
        meta = json.loads(meta_path.read_text())
        itemsize = np.dtype(meta.get("dtype", "uint16")).itemsize
        for split in ("train", "validation"):
            path = out / f"{split}.bin"
            if path.stat().st_size != itemsize * int(meta[f"{split}_tokens"]):
                return False
            if split == "validation" and meta.get("sources"):
                owner = out / "validation_source.bin"
                if owner.stat().st_size != int(meta["validation_tokens"]):
                    return False
            want = meta.get(f"{split}_sha256")
            if want is not None and hashlib.sha256(path.read_bytes()).hexdigest() != want:
                return False
        return True
    except (OSError, ValueError, KeyError, TypeError):
        return False


def spec_shards(spec) -> "Shards":
    """The shards a run spec trains and validates on."""
    return build_shards(spec.data, spec.tokenizer, val_data=getattr(spec, "val_data", "") or None)


def build_shards(data=None, tokenizer: str = "bytes", cache_dir: Path | None = None,
                 val_data: str | None = None) -> Shards:
    """Tokenize the corpus (once; later calls open the memmaps) and return its shards; ``val_data``: the
    user's validation files instead of the corpus' own held-out documents."""
    cache_dir = Path(cache_dir or default_cache_dir())
    if val_data:
        data = load_corpus(None if is_embedded(data) and noisy_percent(data) is None else data, val_data)
    corpus = None if is_embedded(data) else (data if isinstance(data, Corpus) else load_corpus(data))
    # the embedded corpus' fingerprint (and its variants') is in its manifest: no need to decompress 25 MB
    # to find the shards
    fingerprint = embedded_fingerprint(str(data or "embedded")) if corpus is None else corpus.fingerprint
    # a tokenizer file by its content (its spec is path#sha256:HEX12), the others by name
    tok_key = tokenizer if "#sha256:" not in tokenizer and not tokenizer.endswith(".json") else \
        get_tokenizer(tokenizer, None, cache_dir).name
    out = cache_dir / "shards" / f"{fingerprint}-{tok_key}"
    meta_path = out / "meta.json"
    if meta_path.exists() and not _has_sources(meta_path):
        meta_path.unlink()  # written before per-source losses (or unreadable): built again
    if meta_path.exists() and not _intact(out, meta_path):
        import sys
        print(f"warning: token cache {out} is damaged (a shard's size or checksum differs from meta.json): "
              f"rebuilding it", file=sys.stderr)
        meta_path.unlink()
    if not meta_path.exists():
        corpus = corpus or load_corpus(data)
        tok = get_tokenizer(tokenizer, corpus, cache_dir)
        out.mkdir(parents=True, exist_ok=True)
        dtype = token_dtype(tok.vocab_size)
        names = sorted({source_of(d) for d in corpus.documents})
        names = names if 2 <= len(names) <= MAX_SOURCES else []
        meta = {"fingerprint": corpus.fingerprint, "tokenizer": tok.name, "vocab_size": tok.vocab_size,
                "dtype": np.dtype(dtype).name, "sources": names}
        for split in ("train", "validation"):
            docs = corpus.split(split)
            parts, owner = [], []
            for d in docs:
                parts.append(tok.encode(d.text).astype(dtype))
                parts.append(np.array([tok.eot], dtype=dtype))
                if names:  # the document's tokens and its end-of-text token are its source's
                    owner.append(np.full(parts[-2].size + 1, names.index(source_of(d)), np.uint8))
            tokens = np.concatenate(parts) if parts else np.zeros(0, dtype)
            if names and split == "validation":
                with writing(out / "validation_source.bin") as tmp:
                    np.concatenate(owner).tofile(tmp)
            with writing(out / f"{split}.bin") as tmp:  # unique per writer: two builders never share it
                tokens.tofile(tmp)
            meta[f"{split}_tokens"] = int(tokens.size)
            meta[f"{split}_sha256"] = hashlib.sha256(tokens.tobytes()).hexdigest()
            meta[f"{split}_bytes"] = int(sum(len(d.text.encode()) + 1 for d in docs))
        write_text(meta_path, json.dumps(meta,
                                         # written last: its presence means the shards are complete
                                         indent=1))
    meta = json.loads(meta_path.read_text())
    dtype = np.dtype(meta.get("dtype", "uint16"))
    load = lambda split: np.memmap(out / f"{split}.bin", dtype=dtype, mode="r")
    sources = tuple(meta["sources"])
    owner = np.memmap(out / "validation_source.bin", dtype=np.uint8, mode="r") if sources else None
    return Shards(train=load("train"), validation=load("validation"), vocab_size=meta["vocab_size"],
                  tokenizer=meta["tokenizer"], fingerprint=meta["fingerprint"],
                  bytes_per_token=meta["validation_bytes"] / meta["validation_tokens"],
                  validation_source=owner, sources=sources)
