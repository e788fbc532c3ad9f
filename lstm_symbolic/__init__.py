"""lstm_symbolic: symbolic BPTT for LSTM-family cells - LaTeX, NumPy/C code and verdicts."""

__version__ = "0.1.0"
