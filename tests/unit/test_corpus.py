import hashlib
import json
import lzma

import numpy as np
import pytest

from scalinglab.data.corpus import EMBEDDED, MANIFEST, assign_splits, load_corpus
from scalinglab.data.loader import batch_offsets, eval_offsets, windows
from scalinglab.data.tokenizer import ByteTokenizer


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


def test_embedded_corpus_matches_its_manifest(corpus):
    manifest = json.loads(MANIFEST.read_text())
    payload = lzma.decompress(EMBEDDED.read_bytes())
    assert hashlib.sha256(payload).hexdigest() == manifest["fingerprint"]
    assert len(corpus.documents) == manifest["documents"]
    assert set(manifest["inputs"]) == {"sotu", "moby-dick", "shakespeare", "kjv-bible", "austen"}
    assert all(len(v["sha256"]) == 64 for v in manifest["inputs"].values())
    assert 20e6 < sum(manifest["bytes"].values()) < 30e6


def test_split_is_by_document_and_text_is_normalised(corpus):
    ids = [d.id for d in corpus.documents]
    assert len(ids) == len(set(ids))
    val = corpus.split("validation")
    share = sum(len(d.text) for d in val) / sum(len(d.text) for d in corpus.documents)
    assert 0.04 < share < 0.09
    assert {d.id.split("/")[0] for d in val} == {"sotu", "moby-dick", "shakespeare", "kjv-bible", "austen"}
    texts = {d.text for d in corpus.documents}
    assert len(texts) == len(corpus.documents)  # no duplicate documents
    for d in corpus.documents[::25]:
        assert "\r" not in d.text and "\n\n\n" not in d.text and " \n" not in d.text
        assert d.text == d.text.strip()


def test_user_documents_split_whole_and_single_file_split_by_tail():
    docs = [(f"doc{i}", "x" * 1000) for i in range(40)]
    split = assign_splits(docs)
    val = [d for d in split if d.split == "validation"]
    assert 1 <= len(val) <= 3 and {d.text for d in val} == {"x" * 1000}
    one = assign_splits([("only", "abcdefghij" * 100)])
    assert [d.split for d in one] == ["train",
                                      "validation"] and one[0].text + one[1].text == "abcdefghij" * 100


def test_byte_tokenizer_round_trip_and_seeded_windows():
    tok = ByteTokenizer()
    text = "Call me Ishmael. — naïve"
    assert tok.decode(tok.encode(text)) == text
    tokens = np.arange(10_000, dtype=np.uint16)
    a = batch_offsets(tokens.size, 64, 8, seed=3, step=17)
    assert np.array_equal(a, batch_offsets(tokens.size, 64, 8, seed=3, step=17))
    assert not np.array_equal(a, batch_offsets(tokens.size, 64, 8, seed=3, step=18))
    w = windows(tokens, a, 64)
    assert w.shape == (8, 65) and np.array_equal(w[:, 1:] - w[:, :-1], np.ones((8, 64)))
    e = eval_offsets(tokens.size, 64, 1024)
    assert len(e) == 16 and e[-1] + 65 <= tokens.size
