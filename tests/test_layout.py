"""The package's shape: imports point down, no cycles, one source for the config docs, explicit
registered builders, a training loop that reads top to bottom."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
from pathlib import Path

import pytest
from torch import nn

import resnets
from resnets.cli import build_parser
from resnets.eval import evaluate, score
from resnets.models import get_spec, list_models
from resnets.train.config import TrainConfig, choices_of, field_docs
from resnets.train.config_docs import config_markdown

from .conftest import built_for_counting

SRC = Path(resnets.__file__).parent
ROOT = SRC.parents[1]

# the stage of each top-level module or package: a module imports only its own stage or below
LAYERS = {
    "errors": 0,
    "lazy": 0,
    "io": 1,
    "checkpoint": 1,
    "rundir": 1,
    "runtime": 1,
    "plots": 1,
    "argtypes": 1,
    "models": 2,
    "data": 2,
    "inference": 3,
    "eval": 4,
    "train": 5,
    "deploy": 5,
    "detection": 5,
    "analysis": 6,
    "bench": 6,
    "cli": 7,
    "__main__": 8,
}
# imported inside functions only because they are optional or heavy and rarely needed
OPTIONAL = {
    "sklearn",
    "simplejpeg",
    "turbojpeg",
    "tomli",
    "webdataset",
    "onnx",
    "onnxruntime",
    "openvino",
    "captum",
    "captum.attr",
    "nncf",
    "fastapi",
    "uvicorn",
    "onnxruntime.quantization",
    "starlette",
    "selenium",
    "torch.utils.tensorboard",
    "scipy.stats",  # heavy (about 0.5 s) and needed only when a report decides a claim
    "matplotlib",  # heavy (about 0.4 s) and needed only when a figure is drawn: a training
    "matplotlib.figure",  # process stopped before its end, or a rank other than 0, draws none
    "pycocotools.coco",  # the detect extra: COCO mAP
    "pycocotools.cocoeval",
}


def _modules() -> dict[str, ast.Module]:
    out = {}
    for p in sorted(SRC.rglob("*.py")):
        name = ".".join(p.relative_to(SRC).with_suffix("").parts)
        name = "" if name == "__init__" else name.removesuffix(".__init__")
        out[name] = ast.parse(p.read_text(), str(p))
    return out


def _resolve(mod: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """Package-internal targets of an import statement, as dotted names below resnets."""
    if isinstance(node, ast.Import):
        return [
            a.name.removeprefix("resnets.") for a in node.names if a.name.startswith("resnets.")
        ]
    if node.level == 0:
        if not (node.module or "").startswith("resnets"):
            return []
        base = (node.module or "").removeprefix("resnets").lstrip(".")
    else:
        parts = mod.split(".")
        is_pkg = (SRC / Path(*parts) / "__init__.py").is_file()
        parent = parts if is_pkg else parts[:-1]
        parent = parent[: len(parent) - (node.level - 1)]
        base = ".".join(parent + ([node.module] if node.module else []))
    targets = []
    for a in node.names:
        full = f"{base}.{a.name}" if base else a.name
        targets.append(full if _is_module(full) else base)
    return [t for t in targets if t]


def _is_module(dotted: str) -> bool:
    p = SRC / Path(*dotted.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {
        m: {
            t
            for n in ast.walk(tree)
            if isinstance(n, (ast.Import, ast.ImportFrom))
            for t in _resolve(m, n)
            if t != m
        }
        for m, tree in mods.items()
    }


def test_every_import_points_down():
    bad = []
    for mod, targets in _graph().items():
        if mod == "":  # the package's __init__ re-exports the public API
            continue
        own = LAYERS[mod.split(".")[0]]
        for t in targets:
            if LAYERS[t.split(".")[0]] > own:
                bad.append(f"{mod} -> {t}")
    assert not bad, "imports pointing up: " + ", ".join(bad)


def test_no_import_cycles():
    graph = _graph()
    # submodules import their package's __init__ implicitly: only module-to-module edges count
    edges = {
        m: {t for t in ts if t in graph and not m.startswith(t + ".")} for m, ts in graph.items()
    }
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(m: str, path: list[str]) -> bool:
        state[m] = 1
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                cycle.extend(path[path.index(t) :] + [t] if t in path else [m, t])
                return True
            if state.get(t) is None and visit(t, path + [t]):
                return True
        state[m] = 2
        return False

    for m in sorted(edges):
        if state.get(m) is None and visit(m, [m]):
            break
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_function_level_imports_only_for_optional_dependencies():
    bad = []
    for mod, tree in _modules().items():
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for n in ast.walk(fn):
                if isinstance(n, ast.Import):
                    names = [a.name.split(".")[0] for a in n.names]
                elif isinstance(n, ast.ImportFrom):
                    names = ["." if n.level else (n.module or "")]
                else:
                    continue
                bad += [
                    f"{mod}.{fn.name}: {x}"
                    for x in names
                    if x not in OPTIONAL
                    and x.split(".")[0] not in OPTIONAL
                    # a command imports its own machinery when it runs (issue 31): the CLI's
                    # handlers may import resnets' own modules, nothing else
                    and not (mod.startswith("cli") and x == ".")
                ]
    assert not bad, "function-level imports of required modules: " + ", ".join(bad)


def test_training_loop_reads_top_to_bottom():
    src = (SRC / "train" / "loop.py").read_text()
    assert len(src.splitlines()) <= 250
    tree = ast.parse(src)
    (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "train"]
    loops = [n for n in ast.walk(fn) if isinstance(n, (ast.For, ast.While))]
    assert len(loops) == 1, "one loop, one level deep"
    raises = [n for n in ast.walk(fn) if isinstance(n, ast.Raise)]
    # errors only (a diverged run): stops, signals and roll-backs are helpers that return
    assert all(ast.unparse(r.exc).startswith("TrainingDiverged(") for r in raises)
    assert not [n for n in ast.walk(fn) if isinstance(n, (ast.Try, ast.Nonlocal))]


def _weighted_depth(name: str) -> int:
    """The depth of a built model, counted as each family's paper counts it: the weighted
    layers on the main path (convolutions and the classifier), without projection shortcuts.
    Wide ResNets (Zagoruyko & Komodakis) count every convolution, shortcuts included, and not
    the classifier; the concat nets' 1x1 transitions and DenseNet's are counted as DenseNet
    counts its own; the fast net's fixed whitening convolution is a layer."""
    from resnets.models.concat import ConcatTransition
    from resnets.models.fast import Whiten

    spec = get_spec(name)
    net = built_for_counting(name)
    skipped = {id(m) for t in net.modules() if isinstance(t, ConcatTransition) for m in t.modules()}
    depth = 0
    for key, module in net.named_modules():
        if id(module) in skipped:
            continue
        if isinstance(module, Whiten):
            depth += 1
        elif isinstance(module, nn.Conv2d):
            shortcut = any(w in key for w in ("shortcut", "downsample", "proj"))
            depth += 1 if (not shortcut or name.startswith("wrn_")) else 0
        elif isinstance(module, nn.Linear):
            depth += 0 if name.startswith("wrn_") else 1
    assert spec.depth, name
    return depth


@pytest.mark.parametrize("name", list_models())
def test_every_registered_name_builds_the_depth_it_names(name):
    """The builder registered under a name builds a net of that name's depth (a builder
    registered with the wrong depth, or calling the wrong constructor, fails here), and it is
    written out as an explicit ``def NAME(**kwargs)`` with a docstring."""
    spec = get_spec(name)
    assert _weighted_depth(name) == spec.depth
    assert spec.builder.__doc__
    assert f"def {name}(**kwargs" in Path(spec.builder.__code__.co_filename).read_text()


def test_no_source_file_or_function_is_too_long_to_read():
    """Files of at most 700 lines, functions of at most 150."""
    long_files, long_functions = [], []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        if len(text.splitlines()) > 700:
            long_files.append(f"{path.relative_to(SRC)} ({len(text.splitlines())})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 150:
                    long_functions.append(f"{path.relative_to(SRC)}:{node.name} ({lines})")
    assert not long_files and not long_functions, (long_files, long_functions)


# the aliases their own documentation uses; any other module keeps a name that explains it
CONVENTIONAL_ALIASES = {
    "np": "numpy",
    "F": "torch.nn.functional",
    "mp": "multiprocessing",
    "ov": "openvino",
    "st": "hypothesis.strategies",
}


def test_module_aliases_explain_themselves():
    """No ``import augment as A``: an alias of one or two letters is allowed only for the
    conventional ones (numpy as np, torch.nn.functional as F, openvino as ov), in src, tests
    and benchmarks."""
    cryptic = []
    for folder in ("src", "tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                for alias in node.names:
                    full = alias.name
                    if isinstance(node, ast.ImportFrom):
                        full = f"{node.module}.{alias.name}" if node.module else alias.name
                    short = alias.asname
                    if short and len(short) <= 2 and CONVENTIONAL_ALIASES.get(short) != full:
                        cryptic.append(f"{path.relative_to(ROOT)}: {full} as {short}")
    assert not cryptic, cryptic


def _every_command() -> dict:
    """Each command's parser by its full name (``train``, ``weights package``, ...)."""
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    parsers = dict(sub.choices)
    for name in ("weights", "data", "reproduce", "analyze"):
        nested = next(
            a for a in parsers.pop(name)._actions if a.dest not in ("help",) and a.choices
        )
        parsers.update({f"{name} {k}": v for k, v in nested.choices.items()})
    return parsers


def test_every_option_of_every_command_says_what_it_does():
    """``--help`` explains each option: none is listed bare."""
    bare = [
        f"{command} {action.option_strings[0]}"
        for command, parser in _every_command().items()
        for action in parser._actions
        if action.option_strings and action.dest != "help" and not (action.help or "").strip()
    ]
    assert not bare, bare


def test_each_thing_has_one_door():
    """One create_model, one list_models, one public weights loader, one parser per command."""
    defined: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                defined.setdefault(node.name, []).append(str(path.relative_to(SRC)))
    for name in ("create_model", "list_models", "load_weights", "build_parser"):
        assert len(defined.get(name, [])) == 1, (name, defined.get(name))
    for old in ("load_model", "load_for_inference", "load_for_backend", "load_served"):
        assert old not in defined, (old, defined[old])
    # the shared options come from the one helper each in argtypes.py: every command that loads
    # weights takes --weights, --model, --backend and --device from there (same help), and every
    # --device outside the training config is that helper's
    helpers = {
        "--weights": "MODEL.TAG",
        "--model": "architecture",
        "--backend": "inference runtime",
        "--device": "auto, cpu",
    }
    checked = 0
    for command, parser in _every_command().items():
        flags = {f: a for a in parser._actions for f in a.option_strings}
        loads_weights = "--weights" in flags or any(a.dest == "weights" for a in parser._actions)
        for flag, text in helpers.items():
            action = flags.get(flag)
            if action is None or action.dest.startswith("cfg_"):
                continue
            if loads_weights or flag == "--device":
                assert text in (action.help or ""), (command, flag, action.help)
                checked += 1
    assert checked >= 20


def test_config_docs_are_generated_from_the_field_metadata():
    doc = (ROOT / "docs" / "config.md").read_text()
    assert doc == config_markdown(), (
        "docs/config.md is stale: resnets config --markdown > docs/config.md"
    )
    for name, help_ in field_docs().items():
        assert help_.strip(), f"{name} has no help"


def test_cli_help_of_each_field_comes_from_its_metadata():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    train = sub.choices["train"]
    by_dest = {a.dest: a for a in train._actions}
    for f in TrainConfig.__dataclass_fields__:
        action = by_dest[f"cfg_{f}"]
        if f != "recipe":
            assert action.help.startswith(field_docs()[f])
        if choices_of(f):
            assert all(c in action.metavar for c in choices_of(f) if c)


def test_shipped_pages_name_no_absolute_machine_path():
    """Cards, results, the README and BENCHMARKS.md name paths relative to the repository or
    the data root, never the folders of the machine that wrote them."""
    machine = re.compile(r"(?<![\w.~:/-])/(?:work|root|home|tmp|Users|mnt|opt|srv|var)/")
    pages = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").rglob("*.md"))]
    found = [
        f"{page.relative_to(ROOT)}:{number}"
        for page in pages
        for number, line in enumerate(page.read_text().splitlines(), 1)
        if machine.search(line)
    ]
    assert not found, found


@pytest.mark.parametrize(
    "page, marker, argv",
    [
        ("docs/models.md", "models-table", ["models", "--markdown"]),
        ("docs/weights.md", "weights-table", ["weights", "list", "--markdown"]),
        (
            "docs/weights.md",
            "calibration-table",
            ["weights", "list", "--markdown", "--calibration"],
        ),
    ],
)
def test_the_reference_tables_are_generated_from_the_registry_and_the_catalogue(
    page, marker, argv, capsys
):
    """docs/models.md lists every registered model and docs/weights.md every named weights set
    and every fitted temperature, as the commands print them now."""
    from resnets.cli import main

    text = (ROOT / page).read_text()
    block = text.split(f"<!-- {marker}:")[1].split(f"<!-- /{marker} -->")[0]
    assert main(argv) == 0
    expected = capsys.readouterr().out.strip()
    assert block.split("-->\n", 1)[1].strip() == expected, (
        f"{page}'s {marker} is stale: replace it with `resnets {' '.join(argv)}`"
    )


def test_where_is_lists_every_module_as_generated():
    """docs/where-is.md is written by docs/where_is.py from the modules' docstrings: a module
    added, removed or re-described without running it fails here."""
    spec = importlib.util.spec_from_file_location("where_is", ROOT / "docs" / "where_is.py")
    where_is = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(where_is)
    assert (ROOT / "docs" / "where-is.md").read_text() == where_is.render(), (
        "docs/where-is.md is stale: python docs/where_is.py"
    )
    modules = sorted(p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py"))
    text = (ROOT / "docs" / "where-is.md").read_text()
    assert all(f"| `{m}` |" in text for m in modules)


def test_scoring_takes_the_weights_views_not_their_fields():
    """Preprocessing travels with the weights: the scoring doors take a LoadedModel or its
    TestViews, not mean, std, sizes and padding one by one."""
    for fn in (evaluate, score):
        params = inspect.signature(fn).parameters
        assert len(params) <= 8, (fn.__name__, list(params))
        assert not {"mean", "std", "eval_size", "pad"} & set(params)


def test_the_readme_stays_a_short_tour():
    """The README teaches in at most 300 lines (issue 45); reference material lives in docs/,
    and every page it links to exists."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    links = re.findall(r"\]\(((?:docs/|BENCHMARKS)[^)#]*)\)", text)
    assert links and all((ROOT / link).exists() for link in links), links


def test_every_relative_link_of_the_docs_lands_on_a_file():
    """The reference pages moved out of the README link to each other and to the results by
    relative paths: each must exist."""
    broken = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        for link in re.findall(r"\]\(([^)#\s]+)", page.read_text()):
            if "://" not in link and not (page.parent / link).exists():
                broken.append(f"{page.relative_to(ROOT)}: {link}")
    assert not broken, broken


def _type_checking_imports(init: Path, package: str) -> dict[str, str]:
    """name -> module of every import inside ``if TYPE_CHECKING:`` of a package's __init__."""
    found = {}
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.level == 1, ast.dump(stmt)
                for alias in stmt.names:
                    assert alias.asname in (None, alias.name), alias.asname
                    found[alias.name] = f"{package}.{stmt.module}"
    return found


@pytest.mark.parametrize("package", ["resnets", "resnets.models", "resnets.train"])
def test_lazy_names_have_a_static_mirror_for_ides_and_type_checkers(package):
    """Issue 43: the names a package loads on first use (its ``_LAZY`` table, PEP 562) are also
    imported under ``if TYPE_CHECKING:`` from the same modules, so IDEs and type checkers see
    what they are instead of ``Any``; and each resolves to that module's object."""
    module = importlib.import_module(package)
    init = Path(module.__file__)
    lazy = {
        name: where if where.startswith("resnets.") else f"{package}.{where}"
        for name, where in module._LAZY.items()
    }
    assert _type_checking_imports(init, package) == lazy
    # a lazy name that is also a submodule's name would be shadowed by the submodule once
    # anything imports it (``resnets.eval.predict``): such a package stays eager
    submodules = {p.stem for p in init.parent.glob("*.py")} | {
        p.parent.name for p in init.parent.glob("*/__init__.py")
    }
    assert not set(lazy) & submodules
    for name, where in lazy.items():
        assert getattr(module, name) is getattr(importlib.import_module(where), name), name
