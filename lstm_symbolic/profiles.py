"""The five notation profiles of DESIGN.md as frozen data (used through ``notation.get``).

Each table lists the internal names of the built-in cells (LSTM, peephole, CIFG, GRU); a
profile may leave a name out, and it then renders generically.  ``@`` is the time index.
"""

from __future__ import annotations

from types import MappingProxyType

from .notation import Name, Notation, Note, Stack

LSTM_GATES = ("f", "i", "c", "o")  # internal gate letters; c's output is c_tilde
GRU_GATES = ("r", "z", "n")


def _table(rows: dict[str, tuple[str, str]]) -> MappingProxyType:
    return MappingProxyType({k: Name(latex, code) for k, (latex, code) in rows.items()})


LSTM_NOTES = (
    Note(r"$f_t$, $i_t$, $o_t$ are the forget, input and output gates and $\tilde{c}_t$ the "
         r"candidate memory.", needs=("z_f", "i", "o", "c_tilde")),
    Note(r"$i_t$ and $o_t$ are the input and output gates, the forget gate is coupled to the input "
         r"gate, and $\tilde{c}_t$ is the candidate memory.", needs=("i", "o", "c_tilde"),
         unless=("z_f",)),
)
GRU_NOTES = (
    Note(r"$r_t$ and $z_t$ are the reset and update gates and $n_t$ the candidate state, with "
         r"$h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$ as in Cho et al. (2014).",
         needs=("r", "z", "n")),
)


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
    return Notation("default", "the usual notation of the literature since Hochreiter & "
                    "Schmidhuber (1997) and Gers, Schmidhuber & Cummins (2000): $W$ acts on the "
                    "input $x_t$, $U$ on the previous hidden state $h_{t-1}$", _table(rows),
                    notes=LSTM_NOTES + GRU_NOTES)


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
    notes = (
        Note(r"The gates are $\Gamma_f$ (forget), $\Gamma_u$ (update, the input gate) and "
             r"$\Gamma_o$ (output); $\tilde{c}^{\langle t \rangle}$ is the candidate memory.",
             needs=("f", "i", "o")),
        Note(r"Each gate's weights act on the stacked $[a^{\langle t-1 \rangle}; "
             r"x^{\langle t \rangle}]$.", needs=tuple(f"W_{g}" for g in LSTM_GATES)),
        Note(r"In the course's code, `dft`, `dit`, `dcct`, `dot` are "
             r"the gradients of the gate pre-activations $z$.", needs=("z_f", "z_i", "z_o")),
        Note(r"$z$ is the update gate as PyTorch defines it, $h = (1 - z) \odot n + z \odot "
             r"h_{\mathrm{prev}}$: the course's $\Gamma_u$ is $1 - z$.", needs=("z", "n")),
    )
    return Notation("ng", "the notation of the Sequence Models course (Andrew Ng, "
                    "DeepLearning.AI): time as a superscript $\\langle t \\rangle$, the hidden "
                    "state $a^{\\langle t \\rangle}$",
                    _table(rows), time_style="angle", adjoint_code="d", stacks=stacks,
                    notes=notes)


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
    notes = (Note(r"The weights $w_{x\cdot}$ act on the input, $w_{h\cdot}$ on the previous "
                  r"hidden state; $g_t$ is the candidate memory.", needs=("W_f", "U_f", "c_tilde")),)
    return Notation("gfg", "the one-unit notation of the GeeksforGeeks tutorial on the derivation of "
                    "backpropagation through time in an LSTM: every quantity a scalar",
                    _table(rows), adjoint_code="dE_d", scalar=True, notes=notes)


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
    notes = (Note(r"$z^t$ is the block input, $R$ the recurrent weights, and a bar marks a "
                  r"pre-activation ($\bar{f}^t$ before the sigmoid).", needs=("c_tilde", "U_f")),
             Note(r"$R$ is the recurrent weights and a bar marks a pre-activation.",
                  needs=("U_i",), unless=("U_f",)),
             Note(r"$p_f$, $p_i$, $p_o$ are the peephole weights.", needs=("p_f", "p_i", "p_o")))
    return Notation("greff", "the notation of Greff et al. (2017), LSTM: A Search Space Odyssey: time as a "
                    "superscript, the output $y^t$",
                    _table(rows), time_style="sup", notes=notes)


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
    stacks += (
        Stack(r"W_{ih}", "weight_ih_l0", tuple(f"W_{g}" for g in ("r", "z", "n")), "rows"),
        Stack(r"W_{hh}", "weight_hh_l0", tuple(f"U_{g}" for g in ("r", "z", "n")), "rows"),
    )
    lstm = tuple(f"W_{g}" for g in LSTM_GATES)
    notes = (
        Note(r"As `torch.nn.LSTM` stores them, the weights of the gates $i, f, g, o$ (in "
             r"this order) are stacked in $W_{ih}$ and $W_{hh}$.", needs=lstm),
        Note(r"PyTorch keeps two biases, $b_{ih}$ and $b_{hh}$; each gate's $b$ here is their "
             r"sum, and each receives the same gradient $\delta b$.", needs=lstm),
        Note(r"As `torch.nn.GRU` stores them, the weights of the gates $r, z, n$ (in this "
             r"order) are stacked in $W_{ih}$ and $W_{hh}$.", needs=("W_r", "W_z", "W_n")),
        Note(r"PyTorch keeps two biases; $b_r$ and $b_z$ here are the sums $b_{ir} + b_{hr}$ and "
             r"$b_{iz} + b_{hz}$, $b_n$ is $b_{in}$, and $b_{hn}$ stays apart because $r_t$ "
             r"multiplies it.", needs=("b_r", "b_z", "b_hn")),
        Note(r"PyTorch's GRU applies $r_t$ after the product with $W_{hn}$; this cell applies it "
             r"before, as Cho et al. (2014) do.", needs=("W_r", "W_n"), unless=("b_hn",)),
    )
    return Notation("pytorch", "the notation of the PyTorch documentation", _table(rows),
                    stacks=stacks, notes=notes)


PROFILES = MappingProxyType(
    {p.name: p for p in (_default(), _ng(), _gfg(), _greff(), _pytorch())}
)
