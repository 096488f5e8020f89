"""The identity catalogue: every built-in row passes (expected failures fail), wrong rows are
rejected with a message naming the entry, and the runner's contract holds.

The table test checks each row at one size with one draw (float64: hand vs jacfwd/jacrev to
relative 1e-10, vs finite differences to 1e-6 (first order) / 1e-4 (second), Taylor order >= 1.8);
`mmljax check` covers the other sizes and draws.
"""

from __future__ import annotations

import math
import re

import jax.numpy as jnp
import numpy as np
import pytest

from mmljax import catalogue
from mmljax.catalogue import Identity, lectures, matrix, run_identity, scalar, vector

ROWS = catalogue.builtin_identities()
MINE = lectures.IDENTITIES + matrix.IDENTITIES + scalar.IDENTITIES + vector.IDENTITIES


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.domain}:{r.name}" for r in ROWS])
def test_every_row(row):
    report = run_identity(row, sizes=row.sizes[:1], draws=1, seed=1)
    if row.expect_fail:
        assert report.status == "known wrong", report.message
    else:
        assert report.status == "pass", report.message
    assert report.passed and report.checks == 1
    if row.minimiser is None and report.status == "pass":
        assert report.autodiff_rel <= (row.rtol or 1e-10)


def test_catalogue_size_and_metadata():
    assert len(MINE) >= 60
    names = [r.name for r in catalogue.builtin_identities()]
    assert len(names) == len(set(names)), "duplicate entry names"
    for r in MINE:
        assert r.source.strip() and r.domain in ("scalar", "vector", "matrix", "lectures")
        if r.source.startswith("Matrix Cookbook"):
            assert re.search(r"eq\. \(\d+\)|§\d", r.source), r.source
    assert [r.name for r in MINE if r.expect_fail] == [
        "L(a) = Σ (a x_n − y_n)²: printed minimiser a = Σ 2 x_n y_n / Σ x_n²"
    ]
    by_domain = {d: sum(r.domain == d for r in MINE) for d in ("scalar", "vector", "matrix", "lectures")}
    assert min(by_domain.values()) >= 10, by_domain


def test_issue_checklist_is_covered():
    """The identities the issue names are in the table (by a fragment of their name)."""
    wanted = [
        "xⁿ",
        "sin x",
        "cos x",
        "tanh x",
        "exp x",
        "log x",
        "σ(x)",
        "softplus",
        "sum rule",
        "product rule",
        "quotient rule",
        "chain rule (g ∘ f)",
        "dL/da",
        "d²L/da²",
        "minimiser a = Σ x_n y_n",
        "directional derivative",
        "steepest ascent",
        "θᵀφ(x)",
        "f: R^N → R^M",
        "2 sin t (cos t − 1)",
        "d(Ax)/dx = A",
        "d ½||y − Ax||²",
        "vᵀ H v",
        "A sin x",
        "de/dc",
        "dc/dx",
        "normal equations",
        "σ(Ax + b) w.r.t. x",
        "σ(Ax + b) w.r.t. b",
        "rank-3 tensor",
        "w.r.t. vec A",
        "deep composition",
        "2(Ax − y)xᵀ",
        "d/dA xᵀAx = xxᵀ",
        "xᵀA(θ)x",
        "dF[p, q, m, n]",
        "(PQ x MN)",
        "∂det X/∂X",
        "∂ln|det X|",
        "∂det(XᵀAX)",
        "−(X⁻ᵀ ⊗ X⁻¹)",
        "∂aᵀX⁻¹b",
        "∂tr(AX⁻¹B)",
        "∂aᵀXb/∂X",
        "∂xᵀBx/∂x",
        "(x − As)ᵀW(x − As)",
        "bᵀXᵀXc",
        "cubic form",
        "∂tr(AX)",
        "∂tr(XᵀA)",
        "∂tr(AXB)",
        "∂tr(XᵀBX)",
        "∂tr(X²)",
        "∂tr(XᵀBXC)",
        "∂tr(Xᵏ)",
        "||x||₂²",
        "||X||_F²",
        "||x − a||₂",
        "Bᵀ ⊗ A",
        "commutation",
        "Hessian of xᵀBx",
        "2AᵀA",
        "Hessian of ln|det X|",
    ]
    names = [r.name for r in MINE]
    missing = [w for w in wanted if not any(w in n for n in names)]
    assert not missing, missing


# ---- wrong rows are rejected, and the message names the entry -----------------------------------


def _rect_ab(rng, n):
    return rng.standard_normal((n, n + 1)), (rng.standard_normal(n), rng.standard_normal(n + 1))


def _square_ab(rng, n):
    return rng.standard_normal((n, n)), (rng.standard_normal(n), rng.standard_normal(n))


def _Ax(rng, n):
    return rng.standard_normal(n), (rng.standard_normal((n + 1, n)), rng.standard_normal(n + 1))


def _xB(rng, n):
    return rng.standard_normal(n), (rng.standard_normal((n, n)),)


WRONG = [
    # transposed abᵀ: X non-square, so the shape is wrong and the checker says it looks transposed
    (
        Identity(
            name="wrong: ∂aᵀXb/∂X = baᵀ (transposed, rectangular X)",
            source="test",
            f=lambda X, a, b: a @ X @ b,
            derivative=lambda X, a, b: jnp.outer(b, a),
            sample=_rect_ab,
        ),
        None,
    ),
    # transposed abᵀ on a square X: the shapes agree, the values do not
    (
        Identity(
            name="wrong: ∂aᵀXb/∂X = baᵀ (transposed, square X)",
            source="test",
            f=lambda X, a, b: a @ X @ b,
            derivative=lambda X, a, b: jnp.outer(b, a),
            sample=_square_ab,
        ),
        ("jacfwd", "jacrev", "finite_diff", "Taylor"),
    ),
    # a sign flip
    (
        Identity(
            name="wrong: d ½||y − Ax||²/dx = +(y − Ax)ᵀA (sign flip)",
            source="test",
            f=lambda x, A, y: 0.5 * jnp.sum((y - A @ x) ** 2),
            derivative=lambda x, A, y: (y - A @ x) @ A,
            sample=_Ax,
        ),
        ("jacfwd", "jacrev", "finite_diff", "Taylor"),
    ),
    # a missing symmetrisation: 2Bx is right only for symmetric B
    (
        Identity(
            name="wrong: ∂xᵀBx/∂x = 2Bx for non-symmetric B (missing symmetrisation)",
            source="test",
            f=lambda x, B: x @ B @ x,
            derivative=lambda x, B: 2 * B @ x,
            sample=_xB,
        ),
        ("jacfwd", "jacrev", "finite_diff", "Taylor"),
    ),
    # a missing symmetrisation in a Hessian
    (
        Identity(
            name="wrong: Hessian of xᵀBx = 2B (missing symmetrisation)",
            source="test",
            f=lambda x, B: x @ B @ x,
            derivative=lambda x, B: 2 * B,
            order=2,
            sample=_xB,
        ),
        ("jacfwd", "jacrev", "finite_diff", "Taylor"),
    ),
]


@pytest.mark.parametrize("row, failing", WRONG, ids=[w[0].name for w in WRONG])
def test_wrong_rows_fail_with_a_message_naming_the_entry(row, failing):
    report = run_identity(row, sizes=(3,), draws=1)
    assert report.status == "fail" and not report.passed
    assert row.name in report.message
    assert "input shape" in report.message and "size 3" in report.message
    if failing is None:  # wrong shape: reported as such, no witness could compare values
        assert "shape mismatch" in report.message and "the hand formula gives (4, 3)" in report.message
        assert report.autodiff_rel == report.finite_diff_rel == math.inf
        return
    lines = report.message.splitlines()
    for witness in failing:  # every witness rejects it, with a gross error
        assert any(witness in ln and ln.endswith("<-- fails") for ln in lines), (witness, report.message)
    assert report.autodiff_rel > 1e-2 and report.finite_diff_rel > 1e-2
    assert report.taylor_order < 1.5


def test_wrong_minimiser_is_known_wrong_when_expected_and_a_failure_otherwise():
    erratum = next(r for r in lectures.IDENTITIES if r.expect_fail)
    rep = run_identity(erratum, sizes=(10,), draws=2)
    assert rep.status == "known wrong" and rep.passed and rep.failed == rep.checks == 2
    assert "not a stationary point" in rep.message
    import dataclasses

    as_plain = dataclasses.replace(erratum, expect_fail=False, name="erratum as a plain row")
    rep = run_identity(as_plain, sizes=(10,), draws=1)
    assert rep.status == "fail" and not rep.passed and "erratum as a plain row" in rep.message


def test_expected_failure_that_passes_is_reported():
    row = Identity(
        name="correct but marked wrong",
        source="test",
        f=lambda x: jnp.sin(x),
        derivative=lambda x: jnp.cos(x),
        sample=lambda rng, n: (rng.standard_normal(), ()),
        sizes=(1,),
        expect_fail=True,
    )
    rep = run_identity(row, draws=1)
    assert rep.status == "unexpected pass" and not rep.passed
    assert "marked expect_fail" in rep.message


def test_a_row_whose_code_raises_is_an_error_not_a_crash():
    def bad_f(x):
        raise ZeroDivisionError("boom")

    row = Identity(
        name="row with a bug",
        source="test",
        f=bad_f,
        derivative=lambda x: x,
        sample=lambda rng, n: (rng.standard_normal(n), ()),
        sizes=(2,),
    )
    rep = run_identity(row, draws=1)
    assert rep.status == "error" and not rep.passed
    assert "row with a bug" in rep.message and "boom" in rep.message


def test_sampler_must_return_x_and_args():
    row = Identity(
        name="sampler without args",
        source="test",
        f=jnp.sin,
        derivative=jnp.cos,
        sample=lambda rng, n: rng.standard_normal(n),
        sizes=(2,),
    )
    rep = run_identity(row, draws=1)
    assert rep.status == "error" and "(x, args)" in rep.message


def test_identity_validation():
    ok = dict(name="r", source="s", f=jnp.sin, sample=lambda rng, n: (0.0, ()))
    with pytest.raises(ValueError, match="exactly one of"):
        Identity(**ok)
    with pytest.raises(ValueError, match="exactly one of"):
        Identity(**ok, derivative=jnp.cos, minimiser=lambda: 0.0)
    with pytest.raises(ValueError, match="order must be 1 or 2"):
        Identity(**ok, derivative=jnp.cos, order=3)
    with pytest.raises(ValueError, match="sizes must be"):
        Identity(**ok, derivative=jnp.cos, sizes=())
    with pytest.raises(ValueError, match="layout"):
        Identity(**ok, derivative=jnp.cos, layout="row-major")


# ---- runner, registry, selection ----------------------------------------------------------------


def test_report_fields_and_json_dict():
    row = next(r for r in matrix.IDENTITIES if r.name.startswith("∂det X/∂X"))
    rep = run_identity(row, sizes=(2, 3), draws=2, seed=3)
    assert rep.status == "pass" and rep.checks == 4 and rep.failed == 0
    assert rep.shapes == [(2, 2), (2, 2), (3, 3), (3, 3)] and rep.sizes == [2, 3]
    assert set(rep.witnesses) == {"jacfwd", "jacrev", "finite_diff", "taylor_order"}
    assert rep.witnesses["jacfwd"] <= 1e-10 and rep.witnesses["finite_diff"] <= 1e-6
    assert rep.taylor_order >= 1.8 and rep.seconds > 0
    d = rep.to_dict()
    assert d["status"] == "pass" and d["passed"] is True and d["shapes"] == [[2, 2], [2, 2], [3, 3], [3, 3]]
    mini = run_identity(
        next(r for r in lectures.IDENTITIES if r.name.startswith("normal equations")), sizes=(10,), draws=1
    )
    assert mini.kind == "minimiser" and set(mini.witnesses) == {"newton_step", "min_eigenvalue"}
    assert mini.witnesses["newton_step"] <= 1e-8 and mini.witnesses["min_eigenvalue"] > 0
    assert mini.to_dict()["finite_diff_rel"] is None


def test_same_seed_same_draws_and_threads_keep_order():
    rows = scalar.IDENTITIES[:6]
    one = catalogue.run(rows, draws=1, seed=7, workers=1)
    two = catalogue.run(rows, draws=1, seed=7, workers=2)
    assert [r.name for r in two] == [r.name for r in rows]
    for a, b in zip(one, two):
        assert a.status == b.status == "pass"
        assert a.autodiff_rel == b.autodiff_rel and a.finite_diff_rel == b.finite_diff_rel


def test_random_compositions_draw_different_table_functions():
    row = next(r for r in scalar.IDENTITIES if r.name.startswith("chain rule (g ∘ f)"))
    rng = np.random.default_rng(0)
    picks = {tuple(np.argmax(a) for a in row.sample(rng, 1)[1][:2]) for _ in range(20)}
    assert len(picks) > 5


def test_samplers_respect_their_domains():
    rng = np.random.default_rng(0)
    from mmljax.catalogue import _samplers as s

    for n in (2, 5, 9):
        assert np.all(np.linalg.eigvalsh(s.spd(rng, n)) > 0)
        assert np.linalg.cond(s.well_conditioned(rng, n)) < 20
        Q = s.full_column_rank(rng, n + 2, n)
        assert np.linalg.cond(Q.T @ Q) <= 4 + 1e-9
    assert np.all(s.positive(rng, (100,)) >= 0.5)


def test_register_select_and_run(monkeypatch):
    monkeypatch.setattr(catalogue, "_REGISTERED", [])
    row = Identity(
        name="user: d/dx x⁴ = 4x³",
        source="my notes",
        domain="mine",
        f=lambda x: jnp.sum(x**4),
        derivative=lambda x: 4 * x**3,
        sample=lambda rng, n: (rng.standard_normal(n), ()),
        sizes=(3,),
    )
    catalogue.register(row)
    with pytest.raises(ValueError, match="already exists"):
        catalogue.register(row)
    with pytest.raises(TypeError):
        catalogue.register("not a row")
    assert catalogue.select("my notes") == (row,)
    assert catalogue.select("USER: D/DX*") == (row,)
    assert row in catalogue.all_identities()
    [rep] = catalogue.run([row], draws=1)
    assert rep.status == "pass" and rep.domain == "mine"
    with pytest.raises(TypeError, match="Identity"):
        catalogue.run([object()])


def test_run_identity_argument_errors():
    row = scalar.IDENTITIES[0]
    with pytest.raises(ValueError, match="sizes"):
        run_identity(row, sizes="large")
    with pytest.raises(ValueError, match="draws"):
        run_identity(row, draws=0)
    assert math.isfinite(run_identity(row, sizes=(1,), draws=1).autodiff_rel)


def test_fast_compile_options_do_not_change_the_numbers():
    """The witness programs compiled with FAST_COMPILE agree with the default build to rounding."""
    import jax

    from mmljax.catalogue._identity import FAST_COMPILE, _draw
    from mmljax.checking import witness_program

    for name in ("∂det(XᵀAX)/∂X = det(XᵀAX)(AX", "Hessian of ln|det X| (vec)"):
        row = next(r for r in matrix.IDENTITIES if r.name.startswith(name))
        x, args = _draw(row, np.random.default_rng(0), 3)
        v = jax.device_put(np.random.default_rng(1).standard_normal(x.shape))
        lowered = witness_program(row.f, row.derivative, row.order).lower(x, v, args)
        try:
            fast = lowered.compile(FAST_COMPILE)(x, v, args)
        except Exception as e:  # an XLA without these options: the runner falls back, nothing to compare
            pytest.skip(f"FAST_COMPILE not supported here: {e}")
        slow = lowered.compile()(x, v, args)
        for key in slow:
            a, b = np.asarray(fast[key]), np.asarray(slow[key])
            rel = np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)
            # rounding-level differences (FMA contraction); finite differences divide them by h ~ 6e-6
            assert rel <= (1e-9 if key == "finite_diff" else 1e-14), (name, key, rel)


def test_the_catalogue_checks_the_models_own_activations():
    """One activation table: the catalogue's tanh, σ and softplus rows are the models' functions."""
    from mmljax.catalogue import scalar
    from mmljax.models.activations import ACTIVATIONS

    rows = {e.name.split(" ")[0]: e for e in scalar.TABLE}
    for key, name in (("tanh", "tanh"), ("σ(x)", "sigmoid"), ("softplus", "softplus")):
        act = ACTIVATIONS[name]
        assert (rows[key].f, rows[key].df, rows[key].d2f) == (act.f, act.df, act.d2f)
    from mmljax.models import mlp

    assert mlp.ACTIVATIONS is ACTIVATIONS


def test_a_row_may_differentiate_a_pytree_of_parameters():
    def sample(rng, n):
        return {"w": rng.standard_normal((n, 2)), "b": rng.standard_normal(n)}, (rng.standard_normal(2),)

    def f(p, v):
        return jnp.sum(jnp.tanh(p["w"] @ v + p["b"]))

    def d(p, v):
        s = 1 - jnp.tanh(p["w"] @ v + p["b"]) ** 2
        return {"w": jnp.outer(s, v), "b": s}

    good = run_identity(Identity(name="tree", source="test", f=f, derivative=d, sample=sample), draws=1)
    assert good.status == "pass" and good.shapes == [(6,), (12,)], good.message
    wrong = Identity(
        name="tree, b doubled",
        source="test",
        f=f,
        sample=sample,
        expect_fail=True,
        derivative=lambda p, v: {**d(p, v), "b": 2 * d(p, v)["b"]},
    )
    report = run_identity(wrong, draws=1)
    assert report.status == "known wrong" and "x['b'][" in report.message
