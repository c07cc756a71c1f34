import pytest

torch = pytest.importorskip("torch")

from scalinglab.model.gpt import rotary_tables, rotate


def test_rotary_scores_depend_only_on_the_offset():
    """Su et al. 2021: <R_i q, R_j k> is a function of i - j; shifting both positions changes nothing."""
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, 16, generator=g), torch.randn(1, 1, 1, 16, generator=g)
    cos, sin = rotary_tables(64, 16)
    score = lambda i, j: float((rotate(q, cos[i], sin[i]) * rotate(k, cos[j], sin[j])).sum())
    assert score(10, 7) == pytest.approx(score(40, 37), rel=1e-5)
    assert score(10, 7) != pytest.approx(score(10, 3), rel=1e-3)
    assert score(5, 5) == pytest.approx(float((q * k).sum()), rel=1e-5)  # no offset: no rotation of the score


def test_rotation_keeps_norms():
    x = torch.randn(2, 3, 8, 16, generator=torch.Generator().manual_seed(1))
    cos, sin = rotary_tables(8, 16)
    assert torch.allclose(rotate(x, cos, sin).norm(dim=-1), x.norm(dim=-1), rtol=1e-5)
