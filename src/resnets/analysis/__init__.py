"""The paper's analyses: its experiments as data and functions (``registry.py``, defined in
``definitions.py``; ``resnets.reproduce`` runs one from Python), figures, layer responses,
gradient flow, the statistics behind every verdict."""
