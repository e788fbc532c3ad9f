"""Frameworks' weight layouts (PyTorch, Keras, ...) to and from the parameters of a cell."""
