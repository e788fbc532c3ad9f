"""The PyTorch backend (`emit --lang torch`): the autograd.Function's backward against torch's gradcheck for every
cell, the nn.Module against nn.LSTM / nn.GRU, training, torch.compile, the meta device and DDP on gloo."""

from __future__ import annotations

import ast
import socket
from pathlib import Path

import pytest
from conftest import CELLS

from lstm_symbolic import naming, pipeline
from lstm_symbolic.codegen.kernel import build_kernel
from lstm_symbolic.codegen.numpy.emit import module_data
from lstm_symbolic.codegen.torch.emit import TorchDialect
from lstm_symbolic.gradcheck import extra_sizes, load_module

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
F64 = torch.float64


@pytest.fixture(scope="module")
def torch_modules(tmp_path_factory):
    """{cell name or example path: its generated torch module}, each emitted when first asked for."""
    out, modules = tmp_path_factory.mktemp("torch"), {}

    def get(source):
        if source not in modules:
            cell = pipeline.load_cell(source)
            (path,) = pipeline.emit(cell, "torch", out / naming.module_name(cell.name))
            modules[source] = load_module(path, f"_torch_{naming.module_name(cell.name)}")
        return modules[source]
    return get


def _inputs(m, T=3, B=2, I=3, H=3, seed=0):  # noqa: E741
    """xs, the initial states and the parameters of one layer, float64, all requiring gradients (a size
    beyond hidden and input: 2)."""
    gen = torch.Generator().manual_seed(seed)
    sizes = {"hidden": H, "input": I, **{s.removesuffix("_size"): 2 for s in extra_sizes(m)}}
    rand = lambda *shape: (torch.rand(*shape, generator=gen, dtype=F64) * 2 - 1).requires_grad_()  # noqa: E731
    return (rand(T, B, I), *[rand(B, sizes[m.STATE_SIZES.get(s, "hidden")]) for s in m.STATES],
            *[rand(*[sizes[s] for s in shape]) for shape in m.PARAMS.values()])


@pytest.mark.parametrize("cell", CELLS)
def test_the_file_imports_torch_only_and_its_kernel_leaves_no_device(cell):
    module = naming.module_name(cell)
    tree = ast.parse(pipeline.code_files(pipeline.load_cell(cell), "torch")[f"{module}_torch.py"])
    top = {a.name for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom) for a in node.names}
    assert top == {"torch"}
    kernel = next(c for c in tree.body if isinstance(c, ast.ClassDef) and c.name == "_Sequence")
    used = {n.attr for n in ast.walk(kernel) if isinstance(n, ast.Attribute)}
    assert not used & {"numpy", "cpu", "cuda", "item", "tolist"}, used


@pytest.mark.parametrize("source", CELLS + [str(p) for p in EXAMPLES], ids=lambda s: Path(s).stem)
def test_the_backward_pass_passes_torch_gradcheck(torch_modules, source):
    m = torch_modules(source)
    assert torch.autograd.gradcheck(m._Sequence.apply, _inputs(m), eps=1e-6, atol=1e-8, rtol=1e-6)


def _pair(m, **options):
    """The generated module and nn.LSTM / nn.GRU of the same options, ours loaded from nn's state dict
    (lstm-proj: nn.LSTM(proj_size=2))."""
    options.update({s: 2 for s in extra_sizes(m)})
    torch.manual_seed(1)
    reference = (torch.nn.LSTM if len(m.STATES) == 2 else torch.nn.GRU)(3, 4, dtype=F64, **options)
    ours = getattr(m, m.MODULE)(3, 4, dtype=F64, **options)
    ours.load_state_dict(reference.state_dict())
    return ours, reference


def _states(m, layers, batch, seed=None, **options):
    """Random initial states of (layers, batch, each state's size): hidden 4, any other size 2."""
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    sizes = {"hidden": 4, **{s.removesuffix("_size"): 2 for s in extra_sizes(m)}}
    return tuple(torch.randn(layers, batch, sizes[m.STATE_SIZES.get(s, "hidden")], dtype=F64, generator=gen,
                             **options) for s in m.STATES)


def _flat(result):
    output, state = result
    return [output, *(state if isinstance(state, tuple) else (state,))]


@pytest.mark.parametrize("cell", ["lstm", "gru-reset-after", "lstm-proj"])
def test_the_module_equals_torch_nn_outputs_and_every_gradient(torch_modules, cell):
    m = torch_modules(cell)
    ours, reference = _pair(m, num_layers=2, bidirectional=True, batch_first=True)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(3, 5, 3, dtype=F64, generator=gen, requires_grad=True)  # (B, T, input): batch_first
    state = _states(m, 4, 3, 3, requires_grad=True)
    given = state if len(state) > 1 else state[0]
    got, want = _flat(ours(x, given)), _flat(reference(x, given))
    weights = [torch.randn(v.shape, dtype=F64, generator=gen) for v in want]
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape and (a - b).abs().max() < 1e-10
    grads = [torch.autograd.grad(sum((v * w).sum() for v, w in zip(vs, weights, strict=True)),
                                 [x, *state, *module.parameters()]) for vs, module in ((got, ours), (want, reference))]
    for a, b in zip(grads[0][:1 + len(state)], grads[1][:1 + len(state)], strict=True):
        assert (a - b).abs().max() < 1e-10  # input and initial states
    ours_grads = dict(zip([n for n, _ in ours.named_parameters()], grads[0][1 + len(state):], strict=True))
    nn_grads = dict(zip([n for n, _ in reference.named_parameters()], grads[1][1 + len(state):], strict=True))
    compared = 0
    for name, parts in m._TORCH_LAYOUT.items():
        for suffix in ("_l0", "_l0_reverse", "_l1", "_l1_reverse"):
            for key, block in parts:  # a summed bias: the gradient of each of its two arrays
                nn_block = nn_grads[f"{key}{suffix}"].chunk(m._TORCH_BLOCKS[key])[block]
                assert (ours_grads[f"{name}{suffix}"] - nn_block).abs().max() < 1e-10, (name, key, suffix)
                compared += 1
    assert compared >= len(nn_grads) * 3


@pytest.mark.parametrize("cell", ["lstm", "gru-reset-after", "lstm-proj"])
def test_torch_state_dict_round_trips_and_bias_false_matches(torch_modules, cell):
    m = torch_modules(cell)
    ours, reference = _pair(m, num_layers=2, bidirectional=True)
    back = (type(reference))(3, 4, num_layers=2, bidirectional=True, dtype=F64, **{s: 2 for s in extra_sizes(m)})
    assert list(ours.torch_state_dict()) == list(reference.state_dict())
    back.load_state_dict(ours.torch_state_dict())  # the summed bias all in bias_ih: same function
    x = torch.randn(5, 2, 3, dtype=F64)
    assert (back(x)[0] - reference(x)[0]).abs().max() < 1e-12
    assert all((ours.torch_state_dict()[k] == 0).all() for k in ours.torch_state_dict() if k.startswith("bias_hh")
               and cell != "gru-reset-after")
    ours, reference = _pair(m, bias=False)
    assert not any(n.startswith("b_") for n, _ in ours.named_parameters())
    assert (ours(x)[0] - reference(x)[0]).abs().max() < 1e-12


def test_initial_states_optional_unbatched_and_one_state_alone(torch_modules):
    m = torch_modules("gru")
    net = getattr(m, m.MODULE)(3, 4, num_layers=2)
    x = torch.randn(6, 3)  # unbatched (T, input)
    out, h = net(x)
    assert out.shape == (6, 4) and h.shape == (2, 4)
    out2, _ = net(x, torch.zeros(2, 4))
    assert torch.equal(out, out2)


def test_a_training_loop_reduces_the_loss(torch_modules):
    m = torch_modules("lstm-peephole")
    torch.manual_seed(3)
    net = getattr(m, m.MODULE)(2, 8)
    head = torch.nn.Linear(8, 1)
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=0.05)
    x = torch.randn(10, 16, 2)
    y = x.sum(dim=(0, 2)).unsqueeze(1) / 4  # the sum of the sequence
    losses = []
    for _ in range(40):
        opt.zero_grad()
        out, _ = net(x)
        loss = torch.nn.functional.mse_loss(head(out[-1]), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_the_module_runs_on_the_meta_device(torch_modules):
    """No operation is tied to the CPU: forward and backward on tensors without storage give the shapes."""
    for cell in CELLS:
        m = torch_modules(cell)
        sizes = {s: 3 for s in extra_sizes(m)}  # lstm-proj: proj_size 3, its output (5, 2, 2 * 3)
        net = getattr(m, m.MODULE)(3, 4, num_layers=2, bidirectional=True, device="meta", **sizes)
        x = torch.randn(5, 2, 3, device="meta", requires_grad=True)
        out, state = net(x)
        out.sum().backward()
        assert out.shape == (5, 2, 6 if sizes else 8) and out.device.type == "meta" and x.grad.shape == x.shape
        assert all(p.grad.shape == p.shape for p in net.parameters())


@pytest.mark.slow
def test_torch_compile_runs_and_agrees(torch_modules):
    m = torch_modules("lstm")
    net = getattr(m, m.MODULE)(3, 4, dtype=F64)
    x = torch.randn(3, 2, 3, dtype=F64, requires_grad=True)
    compiled = torch.compile(net)
    got, want = compiled(x)[0], net(x)[0]
    assert (got - want).abs().max() < 1e-12
    g_got, = torch.autograd.grad(got.sum(), x)
    g_want, = torch.autograd.grad(want.sum(), x)
    assert (g_got - g_want).abs().max() < 1e-12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, path, port, x, results):
    import torch.distributed as dist  # noqa: PLC0415

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        m = load_module(Path(path), "_torch_ddp")
        torch.manual_seed(4)
        net = torch.nn.parallel.DistributedDataParallel(getattr(m, m.MODULE)(3, 4, num_layers=2, dtype=F64))
        out, _ = net(x[:, rank * 2:(rank + 1) * 2])
        out.sum().backward()  # DDP averages the two processes' gradients: half the whole batch's
        results[rank] = [p.grad.clone() for p in net.parameters()]
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_on_gloo_gives_the_gradients_of_the_whole_batch(tmp_path):
    import torch.multiprocessing as mp  # noqa: PLC0415

    (path,) = pipeline.emit(pipeline.load_cell("lstm"), "torch", tmp_path)
    x = torch.randn(5, 4, 3, dtype=F64)
    manager = mp.get_context("spawn").Manager()
    results = manager.dict()
    context = mp.spawn(_ddp_worker, args=(str(path), _free_port(), x, results), nprocs=2, join=False)
    for p in context.processes:
        p.join(timeout=300)
    alive = [p for p in context.processes if p.is_alive()]
    for p in alive:
        p.kill()
    assert not alive and all(p.exitcode == 0 for p in context.processes)
    m = load_module(path, "_torch_ddp_single")
    torch.manual_seed(4)
    single = getattr(m, m.MODULE)(3, 4, num_layers=2, dtype=F64)
    out, _ = single(x)
    (out.sum() / 2).backward()
    for rank in (0, 1):
        for got, p in zip(results[rank], single.parameters(), strict=True):
            assert (got - p.grad).abs().max() < 1e-12


@pytest.mark.parametrize("cell", ["lstm", "gru", "lstm-proj"])
def test_kernel_c_agrees_with_kernel_torch(tmp_path, monkeypatch, cell):
    """kernel="c": the generated C binding beside the torch module runs inside the autograd.Function."""
    from conftest import COMPILERS  # noqa: PLC0415

    if not COMPILERS:
        pytest.skip("no C compiler")
    monkeypatch.setenv("LSTM_SYMBOLIC_CACHE", str(tmp_path / "cache"))
    source = pipeline.load_cell(cell)
    pipeline.emit(source, "c", tmp_path)
    (path,) = pipeline.emit(source, "torch", tmp_path)
    m = load_module(path, f"_torch_c_{naming.module_name(cell)}")
    torch.manual_seed(5)
    sizes = {s: 2 for s in extra_sizes(m)}
    ours = getattr(m, m.MODULE)(3, 4, num_layers=2, bidirectional=True, dtype=F64, **sizes)
    in_c = getattr(m, m.MODULE)(3, 4, num_layers=2, bidirectional=True, dtype=F64, kernel="c", **sizes)
    in_c.load_state_dict(ours.state_dict())
    x = torch.randn(5, 2, 3, dtype=F64, requires_grad=True)
    state = _states(m, 4, 2, requires_grad=True)
    given = state if len(state) > 1 else state[0]
    got, want = _flat(in_c(x, given)), _flat(ours(x, given))
    for a, b in zip(got, want, strict=True):
        assert (a - b).abs().max() < 1e-12
    loss = lambda vs: sum((v * v).sum() for v in vs)  # noqa: E731
    for a, b in zip(torch.autograd.grad(loss(got), [x, *state, *in_c.parameters()]),
                    torch.autograd.grad(loss(want), [x, *state, *ours.parameters()]), strict=True):
        assert (a - b).abs().max() < 1e-12
    with pytest.raises(ValueError, match="kernel is 'torch' or 'c'"):
        getattr(m, m.MODULE)(3, 4, kernel="cuda", **sizes)


def test_a_second_derivative_raises_rather_than_coming_out_wrong(torch_modules):
    m = torch_modules("lstm")
    net = getattr(m, m.MODULE)(2, 3, dtype=F64)
    x = torch.randn(4, 1, 2, dtype=F64, requires_grad=True)
    g, = torch.autograd.grad(net(x)[0].pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_wrong_input_or_state_shape_is_one_line_naming_it(torch_modules, cell):
    m = torch_modules(cell)
    rnn = getattr(m, m.MODULE)(input_size=3, hidden_size=4, num_layers=2, batch_first=True, dtype=F64)
    x = torch.zeros(5, 7, 3, dtype=F64)  # (B, T, input)
    with pytest.raises(ValueError, match=r"input: expected .* got \(5, 7, 2\)"):
        rnn(torch.zeros(5, 7, 2, dtype=F64))
    with pytest.raises(ValueError, match=r"input: expected"):
        rnn(torch.zeros(5, dtype=F64))
    wrong = torch.zeros(1, 5, 4, dtype=F64)  # one layer's state for a two-layer module
    state = (wrong, torch.zeros(2, 5, 4, dtype=F64)) if len(m.STATES) == 2 else wrong
    with pytest.raises(ValueError, match=rf"state {m.STATES[0]}: expected shape \(2, 5, 4\), got \(1, 5, 4\)"):
        rnn(x, state)
    right = tuple(torch.zeros(2, 5, 4, dtype=F64) for _ in m.STATES)
    output, _ = rnn(x, right if len(right) > 1 else right[0])
    assert output.shape == (5, 7, 4)


def test_lstm_proj_takes_proj_size_and_sizes_each_state(torch_modules):
    """nn.LSTM(proj_size)'s constructor and states: h (layers, B, proj), c (layers, B, hidden); a layer after
    the first reads the previous one's output (proj × directions)."""
    m = torch_modules("lstm-proj")
    with pytest.raises(TypeError, match="proj_size"):
        getattr(m, m.MODULE)(3, 4)
    rnn = getattr(m, m.MODULE)(3, 4, num_layers=2, bidirectional=True, proj_size=2, dtype=F64)
    assert rnn.proj_size == 2 and rnn.W_f_l1.shape == (4, 4) and rnn.U_f_l1.shape == (4, 2)
    assert rnn.W_hr_l1_reverse.shape == (2, 4)
    output, (h, c) = rnn(torch.zeros(5, 3, 3, dtype=F64))
    assert output.shape == (5, 3, 4) and h.shape == (4, 3, 2) and c.shape == (4, 3, 4)
    with pytest.raises(ValueError, match=r"state h: expected shape \(4, 3, 2\), got \(4, 3, 4\)"):
        rnn(torch.zeros(5, 3, 3, dtype=F64), (torch.zeros(4, 3, 4, dtype=F64), c))


ZERO_PROJ = '''
name = "zero-proj"
sizes = ["proj"]
states = ["h", "c"]
[state_sizes]
h = "proj"
[inputs]
x = "input"
[params]
W = ["hidden", "input"]
V = ["proj", "hidden"]
[equations]
c = "tanh(W @ x) + c_prev"
h = "V @ c"
'''


def test_a_state_of_another_size_whose_gradient_stops_passes_gradcheck(tmp_path):
    """h (proj) is read by no step: its gradient to h_prev is zeros of the proj size, made like d_hs."""
    from lstm_symbolic.spec.load import parse_spec  # noqa: PLC0415

    (path,) = pipeline.emit(parse_spec(ZERO_PROJ), "torch", tmp_path)
    assert "np." not in path.read_text()
    m = load_module(path, "_torch_zero_proj")
    assert torch.autograd.gradcheck(m._Sequence.apply, _inputs(m), eps=1e-6, atol=1e-8, rtol=1e-6)


def _data(cell: str, dialect=None) -> dict:
    return module_data(build_kernel(pipeline.derive(pipeline.load_cell(cell))), dialect)


def test_which_vector_sums_leave_the_loop_is_decided_on_the_plan():
    """lstm-peephole's peephole gradients read c_prev or c (rows of c_seq) and a gate's adjoint (a row of
    d_lin_x): PyTorch sums each once after the loop over every step, NumPy at each step.  lstm-layernorm's
    gains read values of the step no array keeps: they stay in the loop."""
    torch_data, numpy_data = _data("lstm-peephole", TorchDialect()), _data("lstm-peephole")
    assert torch_data["after_loop"] == [
        "d_p_i += (c_seq[:T]*d_lin_x[:T, :, H:2 * H]).sum(dim=(0, 1))",
        "d_p_f += (c_seq[:T]*d_lin_x[:T, :, :H]).sum(dim=(0, 1))",
        "d_p_o += (c_seq[1:]*d_lin_x[:T, :, 3 * H:4 * H]).sum(dim=(0, 1))",
    ]
    assert not any(".sum(" in line for line in torch_data["backward_lines"])
    assert numpy_data["after_loop"] == [] and sum(".sum(axis=0)" in line for line in numpy_data["backward_lines"]) == 3
    layernorm = _data("lstm-layernorm", TorchDialect())
    assert layernorm["after_loop"] == [] and "d_b_c += (d_nc).sum(axis=0)" in layernorm["backward_lines"]


def test_the_torch_dialect_fuses_the_folded_projection_and_reads_rows_from_tuples():
    """lstm's per-step product adds the input's projection at step t in one torch.addmm; each row the loop
    reads comes from a tuple unbound once before it, numbered as the loop first reads them, the weights apart."""
    torch_data, numpy_data = _data("lstm", TorchDialect()), _data("lstm")
    assert torch_data["forward_lines"][0] == "proj_h_prev = torch.addmm(_rows0[t], _rows1[t], _w0)"
    assert torch_data["forward_setup"][:2] == ["_rows0 = proj_x.unbind(0)", "_rows1 = h_seq.unbind(0)"]
    assert torch_data["forward_setup"][-1] == '_w0 = stacked["h_prev"].T'
    product = 'proj_h_prev = h_seq[t] @ stacked["h_prev"].T'
    assert numpy_data["forward_lines"][:2] == [product, "proj_h_prev += proj_x[t]"]
    assert numpy_data["forward_setup"] == numpy_data["backward_setup"] == []
