import numpy as np
import pytest

from scalinglab.errors import ScalingLabError
from scalinglab.fit.chinchilla.objectives import (
    FreeMask,
    RobustLoss,
    _softmax3,
    objective,
    objective_and_grad_single,
    objective_grad_hess,
)


def _data(seed=0, R=40):
    rng = np.random.default_rng(seed)
    x = np.log(np.geomspace(1e7, 1e10, R))
    y = np.log(np.geomspace(1e9, 1e11, R))[rng.permutation(R)]
    logL = np.log(1.7 + 400 * np.exp(-0.34 * x) + 410 * np.exp(-0.28 * y)) + rng.normal(0, 0.02, R)
    return x, y, logL


@pytest.mark.parametrize("name", ["huber", "mse", "asymmetric"])
def test_gradient_matches_finite_differences(name):
    x, y, logL = _data()
    loss = RobustLoss(name=name, delta=1e-2)
    w = np.linspace(0.5, 2, len(x))
    theta = np.array([[6.0, 0.3, 6.1, 0.27, 0.5]])
    f, g, _ = objective_grad_hess(theta, x, y, logL, w, loss)
    h = 1e-6
    for k in range(5):
        tp, tm = theta.copy(), theta.copy()
        tp[0, k] += h
        tm[0, k] -= h
        fd = (objective(tp, x, y, logL, w, loss) - objective(tm, x, y, logL, w, loss)) / (2 * h)
        assert g[0, k] == pytest.approx(fd[0], rel=1e-5, abs=1e-9)
    free = FreeMask(np.ones(5, bool), np.zeros(5))
    f1, g1 = objective_and_grad_single(theta[0], x, y, logL, w, loss, free)
    assert f1 == pytest.approx(f[0], rel=1e-13)
    np.testing.assert_allclose(g1, g[0], rtol=1e-12)


def test_hessian_is_jacobian_weighted_product():
    x, y, logL = _data(1)
    loss = RobustLoss(delta=1e-2)
    theta = np.array([[5.0, 0.25, 7.0, 0.35, 0.4], [4.0, 0.2, 6.0, 0.3, 0.6]])
    _, _, H = objective_grad_hess(theta, x, y, logL, np.ones_like(x), loss)
    for s in range(2):
        pred, pu, pv, pe = (arr[0] for arr in _softmax3(theta[s:s + 1], x, y))
        J = np.stack([pu, -pu * x, pv, -pv * y, pe], axis=1)
        W = loss.irls_weight(pred - logL)
        np.testing.assert_allclose(H[s], J.T @ (W[:, None] * J), rtol=1e-10)


def test_huber_values_and_blocked_evaluation_agree():
    loss = RobustLoss(delta=0.1)
    r = np.array([-1.0, -0.1, 0.0, 0.05, 2.0])
    np.testing.assert_allclose(loss.rho(r), [0.1 * 0.95, 0.005, 0.0, 0.00125, 0.1 * 1.95])
    np.testing.assert_allclose(loss.psi(r), [-0.1, -0.1, 0.0, 0.05, 0.1])
    x, y, logL = _data(2, R=300)
    thetas = np.random.default_rng(0).normal([6, 0.3, 6, 0.3, 0.5], 0.1, size=(700, 5))
    f, _, _ = objective_grad_hess(thetas, x, y, logL, np.ones_like(x), loss)
    np.testing.assert_allclose(f, objective(thetas, x, y, logL, np.ones_like(x), loss), rtol=1e-12)
    single = [objective(t[None], x, y, logL, np.ones_like(x), loss)[0] for t in thetas[::97]]
    np.testing.assert_allclose(f[::97], single, rtol=1e-12)


def test_asymmetric_loss_weights_over_predictions():
    loss = RobustLoss(name="asymmetric", delta=0.1, tau=0.8)
    assert loss.rho(np.array([0.5]))[0] == pytest.approx(4 * loss.rho(np.array([-0.5]))[0])


def test_bad_loss_settings_are_named():
    with pytest.raises(ScalingLabError, match="unknown loss 'l1'"):
        RobustLoss(name="l1")
    with pytest.raises(ScalingLabError, match="delta must be positive"):
        RobustLoss(delta=0)
