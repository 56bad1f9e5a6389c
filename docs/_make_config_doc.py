"""Regenerate docs/config.md from TrainConfig's source: python docs/_make_config_doc.py"""

import re
from pathlib import Path

from resnets.train.config import RECIPES, TrainConfig

root = Path(__file__).resolve().parents[1]
src = (root / "src/resnets/train/config.py").read_text()
body = src[src.index("class TrainConfig") : src.index("    def validate")]
lines = [
    "# Training configuration",
    "",
    "Every field of `resnets.train.TrainConfig`, settable from a recipe, a `--config` JSON/TOML file,",
    "`--set KEY=VALUE`, or its own flag (`--batch-size 64`). Precedence: defaults < recipe < file <",
    "command line. Unknown keys, wrong types and out-of-range values are errors before any work starts.",
    "",
    "| field | type | default | meaning (unit) |",
    "| --- | --- | --- | --- |",
]
for line in body.splitlines():
    code, _, comment = line.partition("  # ")
    m = re.match(r"    (\w+): ([\w\[\]]+) = ", code)
    if m:
        name, typ = m.groups()
        default = getattr(TrainConfig(), name)
        lines.append(f"| `{name}` | {typ} | `{default!r}` | {comment.replace('|', '/')} |")
    elif line.strip().startswith("# ---"):
        lines.append(f"| **{line.strip()[6:]}** | | | |")
lines += ["", "## Recipes", ""]
for k, v in RECIPES.items():
    lines.append(f"- `{k}`: " + ", ".join(f"`{a}={b!r}`" for a, b in v.items()))
(root / "docs/config.md").write_text("\n".join(lines) + "\n")
