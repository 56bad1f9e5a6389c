"""The paper's experiments, one file each: its options (help and default written once), the
runs it needs, the report it writes from them, its claims and how they are judged again from
its CSV files, and its registration. Importing this package registers every one of them in
:data:`~resnets.analysis.registry.EXPERIMENTS`, alphabetically; a new
experiment is a new file here and a line below."""

from . import (  # noqa: F401  (each registers itself)
    cifar_table,
    degradation,
    detection,
    gradients,
    paper,
    preact,
    responses,
    shortcuts,
    sum_vs_concat,
    transfer,
    verdicts,
)
