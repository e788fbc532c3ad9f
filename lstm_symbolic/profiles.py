"""The five notation profiles of DESIGN.md as frozen data (used through ``notation.get``).

Each table lists the internal names of the built-in cells (LSTM, peephole, CIFG, GRU); a
profile may leave a name out, and it then renders generically.  ``@`` is the time index.
"""

from __future__ import annotations

from types import MappingProxyType

from .notation import Name, Notation, Stack

LSTM_GATES = ("f", "i", "c", "o")  # internal gate letters; c's output is c_tilde
GRU_GATES = ("r", "z", "n")


def _table(rows: dict[str, tuple[str, str]]) -> MappingProxyType:
    return MappingProxyType({k: Name(latex, code) for k, (latex, code) in rows.items()})


def _default() -> Notation:
    rows = {"x": (r"x_{@}", "x"), "h": (r"h_{@}", "h"), "c": (r"c_{@}", "c"),
            "c_tilde": (r"\tilde{c}_{@}", "c_tilde")}
    for g in LSTM_GATES + GRU_GATES:
        rows[f"z_{g}"] = (rf"z_{{{g},@}}", f"z_{g}")
        rows[f"W_{g}"], rows[f"U_{g}"], rows[f"b_{g}"] = (
            (f"W_{g}", f"W_{g}"), (f"U_{g}", f"U_{g}"), (f"b_{g}", f"b_{g}"))
    for g in ("f", "i", "o", "r", "z", "n"):
        rows[g] = (rf"{g}_{{@}}", g)
    for g in ("i", "f", "o"):
        rows[f"p_{g}"] = (f"p_{g}", f"p_{g}")
    rows["b_hn"] = (r"b_{hn}", "b_hn")
    return Notation("default", "seed 001 and ROOT TMVA (seed 002): W on the input, U on the "
                    "previous hidden state", _table(rows))


def _ng() -> Notation:
    angle = r"^{\langle @ \rangle}"
    gate = {"f": ("\\Gamma_f", "ft"), "i": ("\\Gamma_u", "it"), "o": ("\\Gamma_o", "ot"),
            "c_tilde": ("\\tilde{c}", "cct")}
    rows = {"x": ("x" + angle, "xt"), "h": ("a" + angle, "a_next"), "c": ("c" + angle, "c_next"),
            "h_prev": ("a" + angle.replace("@", "t-1"), "a_prev"),
            "c_prev": ("c" + angle.replace("@", "t-1"), "c_prev")}
    for key, (tex, code) in gate.items():
        rows[key] = (tex + angle, code)
    letter = {"f": "f", "i": "u", "c": "c", "o": "o"}
    for g in LSTM_GATES:
        code = {"f": "f", "i": "i", "c": "c", "o": "o"}[g]
        u = letter[g]
        rows[f"z_{g}"] = (rf"z_{{{u}}}" + angle, f"z{code}t")
        rows[f"d_z_{g}"] = (rf"\delta z_{{{u}}}" + angle, "d" + gate.get(g, gate["c_tilde"])[1])
        rows[f"W_{g}"] = (rf"W_{{{u}x}}", f"W{code}[:, n_a:]")
        rows[f"U_{g}"] = (rf"W_{{{u}a}}", f"W{code}[:, :n_a]")
        rows[f"b_{g}"] = (rf"b_{{{u}}}", f"b{code}")
    for key, (tex, code) in gate.items():
        rows[f"d_{key}"] = (r"\delta " + tex + angle, f"d_{code}")
    rows["d_h"] = (r"\delta a" + angle, "da_next")
    rows["d_c"] = (r"\delta c" + angle, "dc_total")
    stacks = tuple(
        Stack(rf"W_{{{letter[g]}}}", f"W{g}", (f"U_{g}", f"W_{g}"), "columns", ("h_prev", "x"),
              r"\begin{bmatrix} a^{\langle t-1 \rangle} \\ x^{\langle t \rangle} \end{bmatrix}",
              "concat")
        for g in LSTM_GATES)
    return Notation("ng", "Andrew Ng's Sequence Models assignment (seed 000): gates Gamma, "
                    "weights act on the stacked [a(t-1); x(t)]",
                    _table(rows), time_style="angle", adjoint_code="d", stacks=stacks,
                    notes=("the code's dft, dit, dcct, dot are the gradients of the gate "
                           "pre-activations z",))


def _gfg() -> Notation:
    rows = {"x": ("x_{@}", "xt"), "h": ("h_{@}", "ht"), "c": ("c_{@}", "ct"),
            "h_prev": ("h_{t-1}", "h_prev"), "c_prev": ("c_{t-1}", "c_prev"),
            "c_tilde": ("g_{@}", "g"), "d_h": (r"\delta h_{@}", "E_delta")}
    for g in ("f", "i", "o"):
        rows[g] = (f"{g}_{{@}}", g)
    for g, u in zip(LSTM_GATES, ("f", "i", "g", "o"), strict=True):
        rows[f"z_{g}"] = (rf"z_{{{u},@}}", f"z{u}")
        rows[f"W_{g}"] = (rf"w_{{x{u}}}", f"wx{u}")
        rows[f"U_{g}"] = (rf"w_{{h{u}}}", f"wh{u}")
        rows[f"b_{g}"] = (rf"b_{{{u}}}", f"b{u}")
    return Notation("gfg", "GeeksforGeeks (seed 003): one unit, scalar weights", _table(rows),
                    adjoint_code="dE_d", scalar=True)


def _greff() -> Notation:
    rows = {"x": ("x^{@}", "x"), "h": ("y^{@}", "y"), "c": ("c^{@}", "c"),
            "c_tilde": ("z^{@}", "z"), "z_c": (r"\bar{z}^{@}", "zbar")}
    for g in ("f", "i", "o"):
        rows[g] = (f"{g}^{{@}}", g)
        rows[f"z_{g}"] = (rf"\bar{{{g}}}^{{@}}", f"{g}bar")
        rows[f"p_{g}"] = (f"p_{g}", f"p_{g}")
    for g in LSTM_GATES:
        u = "z" if g == "c" else g
        rows[f"W_{g}"], rows[f"U_{g}"], rows[f"b_{g}"] = (
            (f"W_{u}", f"W_{u}"), (f"R_{u}", f"R_{u}"), (f"b_{u}", f"b_{u}"))
    return Notation("greff", "Greff et al., LSTM: A Search Space Odyssey: block input z, "
                    "recurrent weights R, pre-activations barred",
                    _table(rows), time_style="sup")


def _pytorch() -> Notation:
    rows = {"x": ("x_{@}", "input"), "h": ("h_{@}", "h"), "c": ("c_{@}", "c"),
            "c_tilde": ("g_{@}", "g"), "z_c": ("z_{g,@}", "z_g")}
    order = {"i": 0, "f": 1, "c": 2, "o": 3}
    for g, k in order.items():
        u = "g" if g == "c" else g
        if g != "c":
            rows[g] = (f"{g}_{{@}}", g)
        rows[f"W_{g}"] = (rf"W_{{i{u}}}", f"weight_ih_l0[{k}*H:{k + 1}*H]")
        rows[f"U_{g}"] = (rf"W_{{h{u}}}", f"weight_hh_l0[{k}*H:{k + 1}*H]")
        rows[f"b_{g}"] = (rf"b_{{{u}}}", f"(bias_ih_l0 + bias_hh_l0)[{k}*H:{k + 1}*H]")
    for g, k in {"r": 0, "z": 1, "n": 2}.items():
        rows[f"W_{g}"] = (rf"W_{{i{g}}}", f"weight_ih_l0[{k}*H:{k + 1}*H]")
        rows[f"U_{g}"] = (rf"W_{{h{g}}}", f"weight_hh_l0[{k}*H:{k + 1}*H]")
    rows["b_hn"] = (r"b_{hn}", "bias_hh_l0[2*H:3*H]")
    stacks = (
        Stack(r"W_{ih}", "weight_ih_l0", tuple(f"W_{g}" for g in order), "rows"),
        Stack(r"W_{hh}", "weight_hh_l0", tuple(f"U_{g}" for g in order), "rows"),
    )
    return Notation("pytorch", "torch.nn.LSTM: gate order i, f, g, o, stacked weights W_ih, W_hh "
                    "and two biases", _table(rows), stacks=stacks,
                    notes=(r"PyTorch keeps two biases, $b_{ih}$ and $b_{hh}$; each gate's $b$ "
                           r"here is their sum, and each receives the same gradient $\delta b$",))


PROFILES = MappingProxyType(
    {p.name: p for p in (_default(), _ng(), _gfg(), _greff(), _pytorch())}
)
