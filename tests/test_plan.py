"""The storage-and-schedule plan of a step, on its own: what is kept, where each value lives, which pass
computes it, and what each pass loads and stores (LSTM, GRU and the other built-ins)."""

from __future__ import annotations

import pytest
import sympy as sp

from lstm_symbolic import pipeline
from lstm_symbolic.codegen.kernel import build_kernel
from lstm_symbolic.codegen.plan import B, H, Pass, Product, Slot, T, build_plan
from lstm_symbolic.core.derive import derive

S = sp.Symbol


def _plan(name):
    return build_plan(build_kernel(derive(pipeline.load_cell(name))))


def _names(pairs):
    return {(s.name, slot) for s, slot in pairs}


def test_lstm_keeps_its_gates_and_both_states_with_one_row_more():
    plan = _plan("lstm")
    assert [(a.name, a.rows) for a in plan.cache] == [
        ("h", T + 1), ("c", T + 1), ("f", T), ("i", T), ("c_tilde", T), ("o", T)]
    assert plan.home(S("h_prev")) == Slot("cache", "h") and plan.home(S("h")) == Slot("cache", "h", shift=1)
    assert plan.home(S("c_prev")) == Slot("cache", "c") and plan.home(S("c")) == Slot("cache", "c", shift=1)
    assert plan.home(S("x")) == Slot("input", "x")
    assert plan.recomputed == () and S("z_f") not in dict(plan.homes)  # a pre-activation lives in its pass only


def test_lstm_forward_is_one_product_then_one_pass():
    plan = _plan("lstm")
    product, pz = plan.forward
    assert isinstance(product, Product) and not product.back
    assert (product.group.name, product.source, product.target) == ("h_prev", Slot("cache", "h"),
                                                                   Slot("proj", "h_prev", 0, 4))
    assert isinstance(pz, Pass)
    assert [a.lhs.name for a in pz.assigns] == ["z_f", "f", "z_i", "i", "z_c", "c_tilde", "z_o", "o", "c", "h"]
    loads = _names(pz.loads)
    assert ("U_c_h_prev", Slot("proj", "h_prev", 2, 4)) in loads and ("W_o_x", Slot("proj", "x", 3, 4)) in loads
    assert ("b_f", Slot("param", "b_f")) in loads and ("c_prev", Slot("cache", "c")) in loads
    assert not {s for s, _ in pz.loads} & {a.lhs for a in pz.assigns}
    assert _names(pz.stores) == {("f", Slot("cache", "f")), ("i", Slot("cache", "i")),
                                 ("c_tilde", Slot("cache", "c_tilde")), ("o", Slot("cache", "o")),
                                 ("c", Slot("cache", "c", shift=1)), ("h", Slot("cache", "h", shift=1)),
                                 ("h", Slot("output", "h"))}


def test_lstm_backward_writes_the_packed_adjoints_then_projects_them_back():
    plan = _plan("lstm")
    (packed,) = plan.packed  # x and h_prev share d_z_f .. d_z_o
    assert packed.name == "x" and [a.name for a in packed.adjoints] == ["d_z_f", "d_z_i", "d_z_c", "d_z_o"]
    assert {(g.name, p.name, start) for g, p, start in plan.views} == {("x", "x", 0), ("h_prev", "x", 0)}
    first, back, last = plan.backward
    assert isinstance(back, Product) and back.back and back.source == Slot("dlin", "x", 0, 4)
    assert back.target == Slot("back", "h_prev")
    stores = _names(first.stores)
    assert {("d_z_f", Slot("dlin", "x", 0, 4)), ("d_z_o", Slot("dlin", "x", 3, 4)),
            ("d_c_prev", Slot("carry", "c", shift=1))} <= stores
    assert {("d_c_next", Slot("carry", "c")), ("d_h", Slot("carry", "h"))} <= _names(first.loads)
    assert {(slot.name, e) for slot, e in first.sums} == {("b_f", S("d_z_f")), ("b_i", S("d_z_i")),
                                                         ("b_c", S("d_z_c")), ("b_o", S("d_z_o"))}
    assert _names(last.loads) == {("back_h_prev", Slot("back", "h_prev"))}
    assert _names(last.stores) == {("d_h_prev", Slot("carry", "h", shift=1))}
    assert {p for p, _, _ in plan.vector_sums} == {"b_f", "b_i", "b_c", "b_o"}


def test_lstm_workspace():
    ws = {(b.kind, b.name, b.phase): b.size for b in _plan("lstm").workspace}
    assert ws == {("proj", "x", "forward"): 4 * T * B * H, ("proj", "h_prev", "forward"): 4 * B * H,
                  ("dlin", "x", "backward"): 4 * T * B * H, ("back", "h_prev", "backward"): B * H,
                  ("carry", "h", "backward"): 2 * B * H, ("carry", "c", "backward"): 2 * B * H}


def test_gru_passes_end_at_each_product_and_its_operand_crosses_through_the_cache():
    plan = _plan("gru")
    kinds = [("product", op.group.name) if isinstance(op, Product) else "pass" for op in plan.forward]
    assert kinds == [("product", "h_prev"), "pass", ("product", "rh"), "pass"]
    _, first, product, second = plan.forward
    assert ("rh", Slot("cache", "rh")) in _names(first.stores) and product.source == Slot("cache", "rh")
    assert ("z", Slot("cache", "z")) in _names(second.loads)  # computed in the first pass, read from the cache
    assert [a.lhs.name for a in second.assigns][-1] == "h"
    kinds = [("back", op.group.name) if isinstance(op, Product) else "pass" for op in plan.backward]
    assert kinds == ["pass", ("back", "rh"), "pass", ("back", "h_prev"), "pass"]
    # d_rh crosses from the second pass to the third in a scratch array, and nowhere else
    stored = [(k, s.name) for k, op in enumerate(plan.backward) if isinstance(op, Pass)
              for s, slot in op.stores if slot.kind == "temp"]
    loaded = [(k, s.name) for k, op in enumerate(plan.backward) if isinstance(op, Pass)
              for s, slot in op.loads if slot.kind == "temp"]
    assert stored == [(2, "d_rh")] and loaded == [(4, "d_rh")]
    assert ("temp", "d_rh", "backward") in {(b.kind, b.name, b.phase) for b in plan.workspace}
    assert plan.backward[1].source == Slot("dlin", "x", 2, 3)  # rh's adjoint: block 2 of x's array


def test_gru_reset_after_stores_a_projection_block_where_it_loads_it():
    plan = _plan("gru-reset-after")
    (pz,) = [op for op in plan.forward if isinstance(op, Pass)]
    assert ("U_n_h_prev", Slot("proj", "h_prev", 2, 3)) in _names(pz.loads)
    assert ("U_n_h_prev", Slot("cache", "U_n_h_prev")) in _names(pz.stores)
    assert [p.name for p in plan.packed] == ["x", "h_prev"]  # their adjoints differ in the third block
    first = plan.backward[0]
    assert {("d_z_z", Slot("dlin", "x", 1, 3)), ("d_z_z", Slot("dlin", "h_prev", 1, 3))} <= _names(first.stores)


def test_cifg_recomputes_the_forget_gate_instead_of_keeping_it():
    plan = _plan("lstm-cifg")
    assert dict(plan.recomputed) == {S("f"): 1 - S("i")}
    assert "f" not in {a.name for a in plan.cache}
    first = plan.backward[0]
    assert sp.Eq(S("f"), 1 - S("i")) in {sp.Eq(a.lhs, a.rhs) for a in first.assigns}
    assert ("i", Slot("cache", "i")) in _names(first.loads)


@pytest.mark.parametrize("name", [n for n, _ in pipeline.cell_summaries()])
def test_every_pass_loads_what_it_reads_and_does_not_compute(name):
    plan = _plan(name)
    for ops in (plan.forward, plan.backward):
        stored = set()
        for op in ops:
            if isinstance(op, Product):
                assert op.source.kind != "temp" or op.source in stored
                stored.add(op.target)
                continue
            known = {s for s, _ in op.loads}
            for a in op.assigns:
                assert a.rhs.free_symbols <= known, (name, a)
                known.add(a.lhs)
            assert {s for _, e in op.sums for s in e.free_symbols} <= known
            assert {s for s, _ in op.stores} <= known
            for s, slot in op.loads:
                if slot.kind in ("temp", "back", "proj") and slot.name not in {g.name for g in plan.kernel.deferred}:
                    assert slot in stored or Slot(slot.kind, slot.name, 0, slot.width) in stored, (name, s, slot)
            stored |= {slot for _, slot in op.stores}


@pytest.mark.parametrize("lang", pipeline.LANGUAGES)
def test_every_emitter_refuses_a_cell_made_in_python_without_a_hidden_sized_parameter(lang):
    """The spec loader refuses such a cell; a cell built in Python meets the same check in each emitter."""
    from lstm_symbolic.core.cells import CellError, make_cell  # noqa: PLC0415
    from lstm_symbolic.core.functions import tanh  # noqa: PLC0415

    x, h_prev = sp.symbols("x h_prev")
    cell = make_cell("noparam", "no parameters", inputs={"x": ("hidden",)}, states=("h",), params={},
                     equations=[("h", tanh(x + h_prev))])
    with pytest.raises(CellError, match="reads the hidden size from a parameter with hidden rows"):
        pipeline.code_files(cell, lang)


@pytest.mark.parametrize("lang", pipeline.LANGUAGES)
def test_every_emitter_refuses_a_cell_made_in_python_with_a_size_no_parameter_has(lang):
    """Every language takes a cell's own sizes off its parameters: a size none has is one error, in each."""
    from lstm_symbolic.core.cells import CellError, make_cell  # noqa: PLC0415
    from lstm_symbolic.core.functions import MatVec, tanh  # noqa: PLC0415

    x, h_prev, W, U = sp.symbols("x h_prev W U")
    cell = make_cell("lostsize", "a size only a state has", inputs={"x": ("input",)}, states=("h",),
                     params={"W": ("hidden", "input"), "U": ("hidden", "hidden")}, sizes=("extra",),
                     equations=[("h", tanh(MatVec(W, x) + MatVec(U, h_prev)))])
    with pytest.raises(CellError, match="reads the size extra from a parameter, and no parameter has it"):
        pipeline.code_files(cell, lang)
