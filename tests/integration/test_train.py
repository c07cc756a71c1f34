"""Real training on the embedded corpus: it learns, it resumes exactly, it fails loudly."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow

from scalinglab.data.shards import build_shards
from scalinglab.model.accounting import flops_per_token
from scalinglab.model.family import named_shape
from scalinglab.plan.spec import RunSpec
from scalinglab.train.loop import train

from .helpers import call, cli

TRAIN_ARGS = ["--size", "debug", "--n-ctx", "64", "--batch-size", "16", "--tokens", "100000",
              "--threads", "1", "--checkpoint-every", "20", "--eval-tokens", "8192", "--json"]


@pytest.fixture(scope="module")
def shards():
    return build_shards()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every resumed run must reproduce."""
    r = cli("train", *TRAIN_ARGS, "--out", tmp_path_factory.mktemp("ref"))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_debug_model_learns_well_below_unigram_entropy(shards, tmp_path):
    val = np.asarray(shards.validation)
    p = np.bincount(val, minlength=256) / val.size
    unigram = float(-(p[p > 0] * np.log(p[p > 0])).sum())  # ~3.15 nats/byte
    spec = RunSpec(shape=named_shape("debug", n_ctx=128), n_tokens=400_000, batch_size=32,
                   n_eval_tokens=8192)
    t0 = time.perf_counter()
    res = train(spec, tmp_path, threads=1, shards=shards)
    print(f"unigram {unigram:.4f} nats; debug after {res.n_tokens} tokens: {res.val_loss:.4f} nats "
          f"({res.bits_per_byte:.3f} bits/byte) in {time.perf_counter() - t0:.1f} s")
    assert res.status == "done" and res.val_loss < 0.85 * unigram
    assert res.bits_per_byte == pytest.approx(res.val_loss / np.log(2), rel=1e-9)  # bytes: 1 token = 1 byte
    rows = res.evals
    assert [r["step"] for r in rows] == sorted({r["step"] for r in rows}) and rows[-1]["step"] == res.steps
    # Appendix F: attention and embeddings too
    exact = res.n_tokens * flops_per_token(spec.shape, "chinchilla")
    assert rows[-1]["flops"] == pytest.approx(res.flops) and res.flops == pytest.approx(exact)
    assert res.flops_6nd == pytest.approx(6 * res.n_params_total * res.n_tokens)
    assert res.flops != res.flops_6nd
    assert all(np.isfinite(r["noise_scale"]) for r in rows[-3:])
    # achieved FLOP/s of training and MFU against the matmul peak measured on this machine (train/mfu.py)
    assert res.flops_per_s == pytest.approx(res.tokens_per_s * flops_per_token(spec.shape, "chinchilla"))
    assert 0.01 < res.mfu < 1.0 and res.processes == 1
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["val_loss"] == res.val_loss and json.loads((tmp_path / "config.json").read_text())["run_id"]


def test_stopped_then_resumed_run_is_exact(shards, tmp_path):
    spec = RunSpec(shape=named_shape("debug", n_ctx=64), n_tokens=60_000, batch_size=16, n_eval_tokens=4096,
                   checkpoint_every=1000)
    whole = train(spec, tmp_path / "whole", threads=1, shards=shards)
    part = train(spec, tmp_path / "cut", threads=1, shards=shards, stop_after_steps=23)
    assert part.status == "interrupted" and part.steps == 23
    rest = train(spec, tmp_path / "cut", threads=1, shards=shards)
    assert rest.status == "done" and rest.steps == whole.steps
    assert rest.val_loss == pytest.approx(whole.val_loss, abs=1e-6)
    expected = [e["val_loss"] for e in whole.evals]
    assert [e["val_loss"] for e in rest.evals] == pytest.approx(expected, abs=1e-6)
    # the dense training curve: a point every 16,384 tokens (16 steps here), the last at the last step
    assert [p["step"] for p in whole.curve] == [11, 27, 43, 59] and whole.steps == 59
    assert [p["step"] for p in rest.curve] == [p["step"] for p in whole.curve]
    assert [p["loss"] for p in rest.curve] == pytest.approx([p["loss"] for p in whole.curve], abs=1e-6)
    assert [p["lr"] for p in rest.curve] == [p["lr"] for p in whole.curve]


def test_a_piecewise_schedule_trains_with_a_probe_and_estimates_of_its_end(shards, tmp_path, monkeypatch):
    """A user's piecewise-linear schedule runs as given; every curve point carries the loss on the fixed
    validation probe (the final one is the final eval, same windows); the final loss is estimated from the
    curve at 30%, 50%, 75% (here at once, not after 60 s): while the LR has not fallen the estimate is
    flagged, once it falls it is not, and the progress line gets the latest."""
    from scalinglab.fit.curvelaws import RunEstimator, fit_curves
    from scalinglab.plan.schedules import lr_at, of_run, warmup_of
    from scalinglab.train import loop
    monkeypatch.setattr(loop, "ESTIMATE_AFTER_S", 0.0)
    monkeypatch.setattr(loop, "CURVE_TOKENS", 2048)  # a point every 2 steps
    monkeypatch.setattr(loop, "CURVE_PROBE_TOKENS", 1024)  # (the probe's forward passes ruled the time)
    points = ((0, 0.1), (10, 1.0), (60, 1.0), (120, 0.0))
    spec = RunSpec(shape=named_shape("debug", n_ctx=64), n_tokens=120 * 1024, batch_size=16,
                   n_eval_tokens=1024, schedule="piecewise", lr_points=points, lr=0.01)
    assert RunSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert "lr_points" not in RunSpec(shape=spec.shape, n_tokens=1000).to_dict()  # old run ids unchanged
    seen = []
    res = train(spec, tmp_path, threads=1, shards=shards, progress=seen.append, estimator=RunEstimator())
    assert res.status == "done" and len(res.curve) == 60
    for p in res.curve:
        assert p["lr"] == pytest.approx(lr_at(p["step"] - 1, peak=0.01, steps=120, warmup=10, min_frac=0,
                                              schedule="piecewise", points=points))
    assert res.curve[29]["lr"] == pytest.approx(0.01) and res.curve[-1]["lr"] < 1e-3
    assert res.curve[-1]["probe"] == pytest.approx(res.val_loss, abs=1e-6)
    assert [round(e["fraction"], 2) for e in res.estimates] == [0.3, 0.5, 0.75]
    early, late = res.estimates[0], res.estimates[-1]
    assert not early["converged"] and any("not identified" in w for w in early["warnings"])
    assert not any("not identified" in w for w in late["warnings"])
    assert all(np.isfinite(e["final"]) for e in res.estimates)
    assert seen[-1]["estimate"] == late
    from scalinglab.train.progress import estimate_text
    assert estimate_text(seen[40]).startswith("  final: not yet")  # step 41: the estimate from 30%
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["estimates"] == json.loads(json.dumps(res.estimates))
    # with a reference law (here this run's own whole-curve fit; accuracy: tests/unit) only the scale is
    # refitted part-way
    from scalinglab.fit.curvelaws import Curve, CurveFit
    whole = np.array([p["step"] - 1 for p in res.curve if p["step"] > 11])
    ref = fit_curves([Curve("ref", of_run(spec, 0.01), whole, np.array([p["probe"] for p in res.curve
                                                                          if p["step"] > 11]))], name="N=ref")
    told = RunEstimator(ref.to_dict())(of_run(spec, 0.01), res.curve[:18], warmup_of(spec), spec.seed)
    assert told["decay_from"] == "multi-power:N=ref" and np.isfinite(told["final"])
    assert told["converged"] == ref.converged  # a flagged reference flags the estimate
    assert isinstance(CurveFit.from_dict(ref.to_dict()), CurveFit)
    r = call("fit", tmp_path, "--law", "multi-power", "--json")  # `fit RUN_DIR`: its own probe curve
    assert r.returncode == 0, r.stderr
    fit = json.loads(r.stdout)
    past_warmup = [p for p in res.curve if p["step"] > 11]
    assert fit["key"] == f"multi-power:run={res.run_id}" and fit["n_points"] == len(past_warmup)
    assert not (fit["converged"] and fit["warnings"])


def test_bf16_autocast_on_cpu_is_within_0_05_nats_of_fp32(shards, tmp_path):
    import dataclasses
    spec = RunSpec(shape=named_shape("debug", n_ctx=64), n_tokens=100_000, batch_size=16, n_eval_tokens=4096)
    fp32 = train(spec, tmp_path / "fp32", threads=1, shards=shards)
    bf16 = train(dataclasses.replace(spec, precision="bf16"), tmp_path / "bf16", threads=1, shards=shards)
    assert bf16.run_id != fp32.run_id  # another spec: the precision changes the loss
    assert bf16.val_loss != fp32.val_loss and abs(bf16.val_loss - fp32.val_loss) < 0.05
    saved = json.loads((tmp_path / "bf16" / "config.json").read_text())
    assert saved["spec"]["precision"] == "bf16"


def _start(out):
    return subprocess.Popen([sys.executable, "-m", "scalinglab", "train", *TRAIN_ARGS, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path, proc, timeout=120):
    t0 = time.time()
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() - t0 < timeout
        time.sleep(0.05)


def test_sigterm_mid_run_then_resume_matches(reference, tmp_path):
    proc = _start(tmp_path)
    _wait_for(tmp_path / "checkpoint.pt", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3 and "re-run the same command to resume" in err
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert 0 < state["step"] < 157
    r = cli("train", *TRAIN_ARGS, "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["val_loss"] == pytest.approx(reference["val_loss"], abs=1e-6)


def test_kill9_after_checkpoint_then_resume_matches(reference, tmp_path):
    proc = _start(tmp_path)
    _wait_for(tmp_path / "checkpoint.pt", proc)
    time.sleep(0.3)  # past the checkpoint: the steps after it are lost and must be redone identically
    proc.kill()
    proc.wait(timeout=60)
    r = cli("train", *TRAIN_ARGS, "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["val_loss"] == pytest.approx(reference["val_loss"], abs=1e-6)
    assert not (tmp_path / "checkpoint.pt").exists() and not list(tmp_path.glob("*.tmp"))


def test_diverging_run_fails_with_its_reason(shards, tmp_path):
    spec = RunSpec(shape=named_shape("debug", n_ctx=64), n_tokens=30_000, batch_size=8, lr=1e6,
                   n_eval_tokens=2048)
    res = train(spec, tmp_path, threads=1, shards=shards)
    assert res.status == "failed" and "non-finite" in res.reason


def test_unique_tokens_repeat_a_small_slice_and_overfit_it(shards, tmp_path):
    """Data-constrained runs draw every batch from the first U tokens: a model repeating 4k tokens ~40
    times fits them far below the held-out loss, while the same run on the whole split does not."""
    common = dict(shape=named_shape("debug", n_ctx=64), n_tokens=160_000, batch_size=16, n_eval_tokens=4096,
                  lr=3e-3)
    small = train(RunSpec(**common, unique_tokens=4096), tmp_path / "u", threads=1, shards=shards)
    full = train(RunSpec(**common), tmp_path / "f", threads=1, shards=shards)
    assert RunSpec(**common, unique_tokens=4096).n_epochs == pytest.approx(160_000 / 4096, rel=0.01)
    gap_small = small.val_loss - small.evals[-1]["train_loss"]
    gap_full = full.val_loss - full.evals[-1]["train_loss"]
    assert gap_small > 0.5 and gap_small > gap_full + 0.4, (gap_small, gap_full)


@pytest.mark.parametrize("name,message", [
    ("empty.txt", "no text found"), ("bin.txt", "binary content"), ("small.txt", "need at least"),
    ("bad.jsonl", "line 2: no string `text` field"), ("missing", "no such file")])
def test_bad_data_is_one_error_line(name, message, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02" * 100)
    (tmp_path / "small.txt").write_text("too little text. " * 20)
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"txt": 1}\n')
    r = call("train", "--data", tmp_path / name, "--out", tmp_path / "o")
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: --data "), r.stderr
    assert message in lines[0], lines[0]


def test_user_text_trains_with_bpe(tmp_path):
    """A user's folder of text, a BPE tokenizer trained on it, bits/byte comparable across tokenizers."""
    from scalinglab.data.corpus import load_corpus
    docs = [d for d in load_corpus().documents if d.id.startswith("moby-dick/")][:40]
    for d in docs:
        (tmp_path / (d.id.split("/")[1] + ".txt")).write_text(d.text)
    cache = tmp_path / "cache"
    sh = build_shards(tmp_path, "bpe512", cache_dir=cache)
    assert sh.vocab_size == 512 and sh.bytes_per_token > 2.0
    spec = RunSpec(shape=named_shape("debug", vocab_size=512, n_ctx=64), n_tokens=40_000, batch_size=16,
                   data=str(tmp_path), tokenizer="bpe512", n_eval_tokens=4096)
    res = train(spec, tmp_path / "run", threads=1, shards=sh)
    assert res.status == "done"
    assert res.bits_per_byte == pytest.approx(res.val_loss / np.log(2) / sh.bytes_per_token)


def test_a_user_tokenizer_json_trains_and_a_large_vocabulary_gets_uint32_shards(tmp_path):
    """`train --tokenizer path/to/tokenizer.json`: its vocabulary sets the model's, the spec pins the file
    by content (a changed file is one error line, not a silently different run); a vocabulary over 65,536
    gets uint32 shards instead of an error."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from scalinglab.data.corpus import load_corpus
    docs = [d for d in load_corpus().documents if d.id.startswith("moby-dick/")][:40]
    data = tmp_path / "data"
    data.mkdir()
    for d in docs:
        (data / (d.id.split("/")[1] + ".txt")).write_text(d.text)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator([d.text for d in docs], trainers.BpeTrainer(
        vocab_size=384, special_tokens=["</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tok.save(str(tmp_path / "tok.json"))
    env = {**__import__("os").environ, "SCALINGLAB_CACHE": str(tmp_path / "cache")}
    args = ["train", "--size", "debug", "--n-ctx", "64", "--batch-size", "16", "--tokens", "20000",
            "--threads", "1", "--eval-tokens", "2048", "--data", data, "--tokenizer", tmp_path / "tok.json",
            "--json"]
    r = cli(*args, "--out", tmp_path / "run", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "done"
    spec = json.loads((tmp_path / "run" / "config.json").read_text())["spec"]
    assert spec["shape"]["vocab_size"] == tok.get_vocab_size() == 384
    assert spec["tokenizer"].startswith(str((tmp_path / "tok.json").resolve()) + "#sha256:")
    # the same run resumed after the file changed: refused, one line
    from scalinglab.errors import ScalingLabError
    tok.add_special_tokens(["<extra>"])
    tok.save(str(tmp_path / "tok.json"))
    with pytest.raises(ScalingLabError, match="changed since the run was planned"):
        build_shards(str(data), spec["tokenizer"], cache_dir=tmp_path / "cache")

    # 70,000 words: uint32 shards
    words = sorted({w for d in docs for w in d.text.split()})
    vocab = {"</s>": 0, "[UNK]": 1} | {w: i + 2 for i, w in enumerate(words)}
    vocab |= {f"extra{i}": len(vocab) + i for i in range(70_000 - len(vocab))}
    big = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    big.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    big.save(str(tmp_path / "big.json"))
    sh = build_shards(str(data), str(tmp_path / "big.json"), cache_dir=tmp_path / "cache")
    assert sh.vocab_size == 70_000 and sh.train.dtype == np.uint32
    assert sh.train.max() >= 2 and sh.tokenizer.startswith("hf70000-")


def test_your_data_is_recorded_by_its_absolute_path_and_another_spec_is_refused(tmp_path, monkeypatch):
    """Issue 29 §4: --data/--val-data were recorded as given (cwd-relative): a resume from elsewhere, or a
    reader of config.json, would look for another file."""
    (tmp_path / "text.txt").write_text("It was the best of times, it was the worst of times. " * 400)
    monkeypatch.chdir(tmp_path)
    r = call("train", "--data", "text.txt", "--tokens", "4000", "--threads", "1", "--eval-tokens", "1024",
             "--out", "run", "--json")
    assert r.returncode == 0, r.stderr
    spec = json.loads((tmp_path / "run" / "config.json").read_text())["spec"]
    assert spec["data"] == str(tmp_path / "text.txt")
    # issue 30 R5: the same --out with another spec is refused, the finished run's files untouched
    before = (tmp_path / "run" / "result.json").read_bytes()
    r = call("train", "--data", "text.txt", "--tokens", "6000", "--threads", "1", "--eval-tokens", "1024",
             "--out", "run", "--json")
    assert r.returncode == 2 and "holds run" in r.stderr and "n_tokens" in r.stderr, r.stderr
    assert (tmp_path / "run" / "result.json").read_bytes() == before
