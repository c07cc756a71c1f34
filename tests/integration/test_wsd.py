"""WSD schedule and branched cool-downs: a branch started from a longer run's snapshot ends where the same
run trained alone from step 0 ends."""
import json

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow

from scalinglab.data.shards import build_shards
from scalinglab.model.family import named_shape
from scalinglab.plan.spec import RunSpec
from scalinglab.train.loop import train
from scalinglab.train.optim import cooldown_start, lr_at


def test_wsd_schedule_is_constant_then_cools_down_to_min():
    kw = dict(peak=1.0, steps=1000, warmup=100, min_frac=0.0, schedule="wsd", cooldown_frac=0.2)
    assert lr_at(49, **kw) == pytest.approx(0.5)
    assert lr_at(100, **kw) == lr_at(799, **kw) == 1.0
    assert cooldown_start(1000, 0.2) == 800
    assert lr_at(800, **kw) == 1.0 and lr_at(999, **kw) == pytest.approx(1 - (199 / 200) ** 0.5)
    lrs = [lr_at(s, **kw) for s in range(800, 1000)]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    # a shorter run's LRs before its cool-down are the longer run's: the premise of branching
    short = dict(kw, steps=500)
    assert all(lr_at(s, **short) == lr_at(s, **kw) for s in range(cooldown_start(500, 0.2)))


def test_branch_from_snapshot_equals_training_alone(tmp_path):
    shards = build_shards()
    common = dict(shape=named_shape("debug", n_ctx=64), batch_size=8, n_eval_tokens=2048, schedule="wsd",
                  min_lr_frac=0.0, beta2=0.99, checkpoint_every=1000, warmup_steps=20)
    trunk, branch = RunSpec(**common, n_tokens=64 * 8 * 200), RunSpec(**common, n_tokens=64 * 8 * 120)
    assert trunk.branch_key == branch.branch_key and trunk.run_id != branch.run_id
    start = cooldown_start(branch.steps, branch.cooldown_frac)
    train(trunk, tmp_path / "trunk", threads=1, shards=shards, snapshot_at=(start,))
    snapshot = tmp_path / "trunk" / "snapshots" / f"step-{start}.pt"
    assert snapshot.exists()
    branched = train(branch, tmp_path / "branched", threads=1, shards=shards, init_from=snapshot)
    alone = train(branch, tmp_path / "alone", threads=1, shards=shards)
    assert branched.val_loss == pytest.approx(alone.val_loss, rel=1e-6)
    assert branched.n_tokens == alone.n_tokens and branched.steps == alone.steps
    cfg = json.loads((tmp_path / "branched" / "config.json").read_text())
    assert cfg["resolved"]["branched_from"]["step"] == start
    # a snapshot of another run (other seed; or another warm-up: the trainer's default differs for runs
    # under 400 steps) is not used: the run trains from step 0 and says so
    other = train(RunSpec(**common, n_tokens=64 * 8 * 120, seed=1), tmp_path / "other", threads=1,
                  shards=shards, init_from=snapshot)
    assert json.loads((tmp_path / "other" / "config.json").read_text())["resolved"]["branched_from"] is None
    assert other.val_loss != pytest.approx(alone.val_loss, rel=1e-4)
    default_warmup = dict(common, warmup_steps=None)
    train(RunSpec(**default_warmup, n_tokens=64 * 8 * 120), tmp_path / "own-warmup", threads=1, shards=shards,
          init_from=snapshot)
    config = json.loads((tmp_path / "own-warmup" / "config.json").read_text())
    assert config["resolved"]["branched_from"] is None
