"""The paper's analyses: its experiments as data and functions, one file each in
``experiments/`` (the registry and its driver are ``registry.py``; ``resnets.reproduce`` runs
one from Python), figures, layer responses, gradient flow, the statistics behind every
verdict."""
