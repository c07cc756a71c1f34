"""Documents to train on: the embedded public-domain corpus, or the user's text/JSONL files and folders.

Every corpus is split into train and validation BY DOCUMENT (no document straddles the split) and has a
content fingerprint that names its token shards and tokenizers.
"""
from __future__ import annotations

import hashlib
import json
import lzma
import re
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ScalingLabError

ASSETS = Path(__file__).resolve().parents[1] / "assets"
EMBEDDED = ASSETS / "corpus.jsonl.xz"
MANIFEST = ASSETS / "corpus_manifest.json"
VALID_FRACTION = 0.05
MIN_BYTES = 20_000  # below this a held-out split cannot give a stable loss
# `embedded:noisyP`: the embedded corpus with P% of its training characters in degraded documents (whole
# documents, chosen in a fixed hash order), each character of those replaced with probability
# NOISE_CHAR_RATE by a random printable character (seeded by the document's id); validation untouched
NOISY = re.compile(r"embedded:noisy(\d{1,3})")
NOISE_CHAR_RATE = 0.2
NOISE_ALPHABET = np.array([ord(c) for c in string.ascii_letters + string.digits + string.punctuation + " "],
                          dtype=np.uint32)


@dataclass(frozen=True)
class Document:
    id: str
    split: str  # "train" | "validation"
    text: str
    source: str = ""  # a JSONL record's `source` field; else source_of derives it from the id


MAX_BYTES = 8e9  # a user corpus is read into memory (and its tokens kept as shards): a bound, said up front
MAX_SOURCES = 16  # per-source validation losses when a corpus has 2..16 sources (more: too thin to read)


def source_of(doc: Document) -> str:
    """What a document's per-source loss is filed under: its `source` field, else the first component of
    its id: the embedded corpus' collection (sotu/..., austen/...), a user folder's top-level file or
    subfolder, a JSONL file's name (ids file.jsonl:LINE)."""
    if doc.source:
        return doc.source
    base = doc.id.split("#", 1)[0].removeprefix("val:")
    head, _, line = base.rpartition(":")
    if head and line.isdigit():
        base = head
    return base.split("/", 1)[0]


@dataclass(frozen=True)
class Corpus:
    name: str
    documents: tuple[Document, ...]
    known_fingerprint: str | None = None

    def split(self, which: str) -> list[Document]:
        return [d for d in self.documents if d.split == which]

    @property
    def fingerprint(self) -> str:
        """sha256 over ids, splits and texts: equal fingerprints mean identical training data."""
        if self.known_fingerprint:
            return self.known_fingerprint
        h = hashlib.sha256()
        for d in self.documents:
            h.update(f"{d.id}\x00{d.split}\x00".encode() + (f"{d.source}\x00".encode() if d.source else b""))
            h.update(d.text.encode())
            h.update(b"\x00")
        return h.hexdigest()[:16]


def load_corpus(data: str | Path | None = None, val_data: str | Path | None = None) -> Corpus:
    """The embedded corpus (``data`` None or "embedded"), or the user's files (see
    ``read_user_documents``). ``val_data``: the user's own validation files; then every document of
    ``data`` trains and every one of ``val_data`` validates."""
    if val_data:
        train = load_corpus(data)
        try:
            held = read_user_documents(Path(val_data))
        except ScalingLabError as exc:
            raise ScalingLabError(str(exc).replace("`data`", "`val_data`", 1), params=("val_data",)) from None
        docs = tuple(Document(d.id, "train", d.text, d.source) for d in train.documents) + tuple(
            Document(f"val:{doc_id}", "validation", text, src) for doc_id, text, src in held)
        # issue 30 R22: --val-data equal to --data trained and validated on one text, unsaid. Files are
        # compared by content digest (a text file's documents are split, so its texts never match whole),
        # the embedded corpus by document text
        if is_embedded(str(data)):
            seen = {hashlib.sha256(d.text.encode()).digest() for d in train.documents}
            both = sum(hashlib.sha256(text.encode()).digest() in seen for _, text, _ in held)
        else:
            seen = {_digest(f) for f in _files(Path(data))}
            both = sum(_digest(f) in seen for f in _files(Path(val_data)))
        if both:
            import sys
            print(f"warning: {both} of the validation files or documents ({val_data}) are also training "
                  f"data ({data}): the validation loss measures memorisation, not generalisation",
                  file=sys.stderr)
        probe = Corpus("", docs)
        return Corpus(f"{data}|val={val_data}", docs,
                      hashlib.sha256(f"{train.fingerprint}|{probe.fingerprint}".encode()).hexdigest()[:16])
    if data is None or str(data) == "embedded":
        with lzma.open(EMBEDDED, "rt", encoding="utf-8") as fh:
            docs = tuple(Document(d["id"], d["split"], d["text"]) for d in map(json.loads, fh))
        return Corpus("embedded", docs, embedded_fingerprint())
    percent = noisy_percent(data)
    if percent is not None:
        clean = load_corpus(None)
        return Corpus(str(data), degraded(clean.documents, percent), embedded_fingerprint(str(data)))
    docs = read_user_documents(Path(data))
    sources = {doc_id: src for doc_id, _, src in docs if src}
    split = assign_splits([(doc_id, text) for doc_id, text, _ in docs])
    return Corpus(str(data), tuple(Document(d.id, d.split, d.text, sources.get(d.id.split("#", 1)[0], ""))
                                   for d in split))


def embedded_fingerprint(data: str = "embedded") -> str:
    """The embedded corpus' fingerprint, recorded by scripts/build_corpus.py (sha256 of its JSONL); a noisy
    variant's adds its percentage and character rate."""
    base = "embedded-" + json.loads(MANIFEST.read_text())["fingerprint"][:16]
    percent = noisy_percent(data)
    return base if percent is None else f"{base}-noisy{percent}r{round(NOISE_CHAR_RATE * 100)}"


def is_embedded(data) -> bool:
    """The embedded corpus or one of its variants (a Corpus object or a path is not)."""
    if data is not None and not isinstance(data, str):
        return False
    return data is None or data == "embedded" or noisy_percent(data) is not None


def noisy_percent(data) -> int | None:
    """P of `embedded:noisyP`; None for anything else (a path); an error for another `embedded:` name."""
    text = str(data)
    if not text.startswith("embedded:"):
        return None
    match = NOISY.fullmatch(text)
    if not match or not 0 < int(match.group(1)) <= 100:
        raise ScalingLabError(f"`data` {text!r}: the embedded corpus' variants are embedded:noisyP, P a "
                              "whole percentage 1-100 (e.g. embedded:noisy25)", params=("data",))
    return int(match.group(1))


def degraded(documents, percent: int) -> tuple[Document, ...]:
    """Whole training documents, in a fixed hash order of their ids, until ``percent`` of the training
    characters: each of their characters replaced with probability NOISE_CHAR_RATE by a random printable
    one."""
    train = [d for d in documents if d.split == "train"]
    total = sum(len(d.text) for d in train)
    order = sorted(train, key=lambda d: hashlib.sha256(f"noisy:{d.id}".encode()).hexdigest())
    chosen, taken = set(), 0
    for d in order:
        if taken >= percent / 100 * total:
            break
        chosen.add(d.id)
        taken += len(d.text)
    return tuple(Document(d.id, d.split, _corrupt(d.text, d.id)) if d.id in chosen else d
                 for d in documents)


def _corrupt(text: str, doc_id: str) -> str:
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(doc_id.encode()).digest()[:8], "little"))
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).copy()
    hit = rng.random(codes.size) < NOISE_CHAR_RATE
    codes[hit] = rng.choice(NOISE_ALPHABET, size=int(hit.sum()))
    return codes.tobytes().decode("utf-32-le")


def _files(path: Path) -> list[Path]:
    """The files a `data` path names: itself, or every visible file below a folder (as read below)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [p for p in files if not p.name.startswith(".")]


def _digest(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.digest()


def read_user_documents(path: Path) -> list[tuple[str, str, str]]:
    """(id, text, source) per document: a .txt file is one document, a .jsonl file one per line (`text`
    field; an optional string `source` field names its per-source loss, else the file does)."""
    if not path.exists():
        raise ScalingLabError(f"`data` {path}: no such file or directory", params=("data",))
    if not (path.is_dir() or path.is_file()):  # /dev/zero, a pipe: read with no end (issue 30 R21)
        raise ScalingLabError(f"`data` {path}: not a regular file or a folder", params=("data",))
    files = _files(path)
    total_size = sum(f.stat().st_size for f in files)
    if total_size > MAX_BYTES:  # all of it is held in memory while tokenized: say so before reading
        raise ScalingLabError(f"`data` {path}: {total_size / 1e9:.1f} GB of files; the corpus is read into "
                              f"memory and at most {MAX_BYTES / 1e9:g} GB is taken (split it, or give a "
                              "sample)", params=("data",))
    docs: list[tuple[str, str]] = []
    for file in files:
        raw = file.read_bytes()
        if b"\x00" in raw[:8192]:
            raise ScalingLabError(f"`data` {file}: binary content; give UTF-8 text or JSONL with a "
                                  "`text` field", params=("data",))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScalingLabError(f"`data` {file}: not UTF-8 text (byte {exc.start})",
                                  params=("data",)) from None
        if file.suffix.lower() in (".jsonl", ".json"):
            docs.extend(_jsonl_documents(file, text))
        elif text.strip():
            docs.append((str(file.relative_to(path) if path.is_dir() else file.name), text, ""))
    total = sum(len(t.encode()) for _, t, _ in docs)
    if not docs or total == 0:
        raise ScalingLabError(f"`data` {path}: no text found", params=("data",))
    if total < MIN_BYTES:
        raise ScalingLabError(f"`data` {path}: only {total} bytes of text; need at least {MIN_BYTES}",
                              params=("data",))
    return docs


def _jsonl_documents(file: Path, text: str):
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise ScalingLabError(f"`data` {file}, line {i}: not valid JSON", params=("data",)) from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ScalingLabError(f"`data` {file}, line {i}: no string `text` field", params=("data",))
        if record["text"].strip():
            source = record.get("source")
            yield f"{file.name}:{i}", record["text"], source if isinstance(source, str) else ""


def assign_splits(docs: list[tuple[str, str]]) -> list[Document]:
    """Whole documents to validation in a stable hash order until 5% of the bytes (at least one)."""
    total = sum(len(t.encode()) for _, t in docs)
    order = sorted(range(len(docs)), key=lambda i: hashlib.sha256(docs[i][0].encode()).hexdigest())
    val, taken = set(), 0
    for i in order:
        if taken >= VALID_FRACTION * total and val:
            break
        if len(val) + 1 >= len(docs):
            break
        size = len(docs[i][1].encode())
        if taken + size > 2 * VALID_FRACTION * total:  # a document too big for validation: it trains
            continue
        val.add(i)
        taken += size
    if not val:  # one document, or only big ones: hold out the tail of the largest, so validation is unseen
        big = max(range(len(docs)), key=lambda i: len(docs[i][1]))
        doc_id, text = docs[big]
        cut = int(len(text) * (1 - VALID_FRACTION * total / max(len(text.encode()), 1)))
        rest = [Document(d, "train", t) for i, (d, t) in enumerate(docs) if i != big]
        return rest + [Document(doc_id + "#train", "train", text[:cut]),
                       Document(doc_id + "#val", "validation", text[cut:])]
    return [Document(d, "validation" if i in val else "train", t) for i, (d, t) in enumerate(docs)]
