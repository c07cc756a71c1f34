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


def test_noisy_variant_degrades_a_quarter_of_the_training_bytes_and_leaves_validation_alone(corpus):
    from scalinglab.data.corpus import NOISE_CHAR_RATE, embedded_fingerprint
    noisy = load_corpus("embedded:noisy25")
    assert noisy.fingerprint == embedded_fingerprint("embedded:noisy25") != corpus.fingerprint
    pairs = list(zip(corpus.documents, noisy.documents))
    assert all(a.id == b.id and a.split == b.split for a, b in pairs)
    assert all(a.text == b.text for a, b in pairs if a.split == "validation")
    train = [(a, b) for a, b in pairs if a.split == "train"]
    hit = [(a, b) for a, b in train if a.text != b.text]
    share = sum(len(a.text) for a, _ in hit) / sum(len(a.text) for a, _ in train)
    assert 0.25 <= share < 0.27  # whole documents until 25% of the training characters
    changed = sum(x != y for a, b in hit for x, y in zip(a.text, b.text))
    # a replacement can draw the same character: slightly under the rate
    assert 0.97 * NOISE_CHAR_RATE < changed / sum(len(a.text) for a, _ in hit) <= NOISE_CHAR_RATE * 1.01
    assert all(len(a.text) == len(b.text) for a, b in hit)
    again = load_corpus("embedded:noisy25")  # deterministic
    assert [d.text for d in again.documents[:50]] == [d.text for d in noisy.documents[:50]]


@pytest.mark.parametrize("bad", ["embedded:noisy", "embedded:noisy0", "embedded:noisy101", "embedded:clean"])
def test_an_unknown_embedded_variant_is_one_error_naming_the_form(bad):
    from scalinglab.errors import ScalingLabError
    from scalinglab.plan.config import StudyConfig
    with pytest.raises(ScalingLabError, match="embedded:noisyP"):
        StudyConfig(data=bad)


def test_each_document_s_source_and_the_validation_source_map(tmp_path):
    from scalinglab.data.corpus import Document, source_of
    from scalinglab.data.shards import build_shards
    assert source_of(Document("sotu/1791_washington", "train", "x")) == "sotu"
    assert source_of(Document("web.jsonl:12", "train", "x")) == "web.jsonl"
    assert source_of(Document("books/a.txt#val", "validation", "x")) == "books"
    assert source_of(Document("web.jsonl:3", "train", "x", source="forum")) == "forum"
    lines = [json.dumps({"text": f"document {i} " + "words and more words " * 60,
                         "source": ["news", "code", "chat"][i % 3]}) for i in range(60)]
    (tmp_path / "d.jsonl").write_text("\n".join(lines))
    sh = build_shards(str(tmp_path / "d.jsonl"), cache_dir=tmp_path / "cache")
    assert sh.sources == ("chat", "code", "news")
    assert sh.validation_source.shape == sh.validation.shape
    assert set(np.unique(sh.validation_source)) <= {0, 1, 2}
    # an empty or torn meta.json: the cache is built again (issue 30 R11: a JSONDecodeError traceback)
    for damaged in ("", "{not json", "[]"):
        next((tmp_path / "cache").rglob("meta.json")).write_text(damaged)
        again = build_shards(str(tmp_path / "d.jsonl"), cache_dir=tmp_path / "cache")
        assert again.sources == sh.sources and np.array_equal(again.validation, sh.validation)


def test_own_validation_files_validate_and_every_data_document_trains(tmp_path):
    from scalinglab.data.shards import build_shards
    data, val = tmp_path / "data", tmp_path / "val.txt"
    data.mkdir()
    for i in range(4):
        (data / f"{i}.txt").write_text(f"training text number {i}. " * 400)
    val.write_text("held-out text of another kind, " * 800)
    both = load_corpus(str(data), str(val))
    assert [d.split for d in both.documents].count("validation") == 1
    assert all(d.split == "train" for d in both.documents if not d.id.startswith("val:"))
    assert both.fingerprint not in (load_corpus(str(data)).fingerprint,)
    sh = build_shards(str(data), val_data=str(val), cache_dir=tmp_path / "cache")
    assert bytes(sh.validation[:15].astype(np.uint8)) == b"held-out text o"
    from scalinglab.errors import ScalingLabError
    with pytest.raises(ScalingLabError, match="`val_data` .*no such file"):
        load_corpus(str(data), str(tmp_path / "nope"))


def test_a_study_s_tokenizer_file_is_pinned_so_a_changed_file_is_another_study(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    from scalinglab.plan.config import StudyConfig
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab={"</s>": 0, "[UNK]": 1, "a": 2},
                                                           unk_token="[UNK]"))
    tok.save(str(tmp_path / "tok.json"))
    one = StudyConfig(tokenizer=str(tmp_path / "tok.json"))
    assert one.tokenizer.startswith(str((tmp_path / "tok.json").resolve()) + "#sha256:")
    assert StudyConfig(tokenizer=str(tmp_path / "tok.json")).study_id == one.study_id
    tok.add_special_tokens(["<extra>"])
    tok.save(str(tmp_path / "tok.json"))
    assert StudyConfig(tokenizer=str(tmp_path / "tok.json")).study_id != one.study_id


def test_endless_inputs_are_refused_and_validating_on_the_training_text_is_said(tmp_path, capsys):
    """Issue 30 R21/R22: --data /dev/zero read with no limit (MemoryError); --val-data equal to --data
    trained and validated on the same text with no warning."""
    from pathlib import Path

    from scalinglab.data.corpus import read_user_documents
    from scalinglab.errors import ScalingLabError
    with pytest.raises(ScalingLabError, match="not a regular file or a folder"):
        read_user_documents(Path("/dev/zero"))
    text = tmp_path / "t.txt"
    text.write_text("Call me Ishmael. Some years ago, never mind how long precisely. " * 400)
    load_corpus(str(text), str(text))
    assert "1 of the validation files or documents" in capsys.readouterr().err


def test_a_tokenizer_file_with_ids_past_its_size_or_no_unknown_token(tmp_path):
    """Issue 30 R8: ids >= the vocab size overflowed the shards / the embedding; a WordLevel file without
    its unk token was a library traceback on the first unknown word."""
    pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    from scalinglab.data.tokenizer import file_tokenizer
    from scalinglab.errors import ScalingLabError
    tok = Tokenizer(models.WordLevel(vocab={"a": 0, "b": 1, "</s>": 7}))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "wl.json"))
    t = file_tokenizer(str(tmp_path / "wl.json"))
    assert t.vocab_size == 8 and t.eot == 7 and list(t.encode("a b a")) == [0, 1, 0]
    with pytest.raises(ScalingLabError, match="needs its unknown-token entry"):
        t.encode("a zz")
