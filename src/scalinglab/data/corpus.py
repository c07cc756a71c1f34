"""Documents to train on: the embedded public-domain corpus, or the user's text/JSONL files and folders.

Every corpus is split into train and validation BY DOCUMENT (no document straddles the split) and has a
content fingerprint that names its token shards and tokenizers.
"""
from __future__ import annotations

import hashlib
import json
import lzma
from dataclasses import dataclass
from pathlib import Path

from ..errors import ScalingLabError

ASSETS = Path(__file__).resolve().parents[1] / "assets"
EMBEDDED = ASSETS / "corpus.jsonl.xz"
MANIFEST = ASSETS / "corpus_manifest.json"
VALID_FRACTION = 0.05
MIN_BYTES = 20_000  # below this a held-out split cannot give a stable loss


@dataclass(frozen=True)
class Document:
    id: str
    split: str  # "train" | "validation"
    text: str


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
            h.update(f"{d.id}\x00{d.split}\x00".encode())
            h.update(d.text.encode())
            h.update(b"\x00")
        return h.hexdigest()[:16]


def load_corpus(data: str | Path | None = None) -> Corpus:
    """The embedded corpus (``data`` None or "embedded"), or the user's files (see
    ``read_user_documents``)."""
    if data is None or str(data) == "embedded":
        with lzma.open(EMBEDDED, "rt", encoding="utf-8") as fh:
            docs = tuple(Document(d["id"], d["split"], d["text"]) for d in map(json.loads, fh))
        return Corpus("embedded", docs, embedded_fingerprint())
    return Corpus(str(data), tuple(assign_splits(read_user_documents(Path(data)))))


def embedded_fingerprint() -> str:
    """The embedded corpus' fingerprint, recorded by scripts/build_corpus.py (sha256 of its JSONL)."""
    return "embedded-" + json.loads(MANIFEST.read_text())["fingerprint"][:16]


def read_user_documents(path: Path) -> list[tuple[str, str]]:
    """(id, text) per document: a .txt file is one document, a .jsonl file one per line (`text` field)."""
    if not path.exists():
        raise ScalingLabError(f"`data` {path}: no such file or directory", params=("data",))
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    files = [p for p in files if not p.name.startswith(".")]
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
            docs.append((str(file.relative_to(path) if path.is_dir() else file.name), text))
    total = sum(len(t.encode()) for _, t in docs)
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
            yield f"{file.name}:{i}", record["text"]


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
