"""``resnets models`` (the registry with parameters and MACs) and ``resnets summary`` (one
model, stage by stage)."""

from __future__ import annotations

import argparse
import fnmatch

from ..argtypes import MAX_IMAGE_SIDE, add_json, bounded, json_line


def _rows(args: argparse.Namespace) -> list[dict]:
    """The listed models. From the recorded index (no model built, no torch imported) when it
    covers the pattern; otherwise from the registry, measuring what is not recorded."""
    from ..models.index import model_index

    index = {} if args.measure else model_index()
    pattern = args.pattern.lower()
    globbed = any(c in pattern for c in "*?[")
    if index and (globbed or pattern in index):
        return [
            {
                "name": e.name,
                "family": e.family,
                "depth": e.depth,
                "kind": e.kind,
                "params": e.cost.params,
                "macs": None if args.no_macs else e.cost.macs,
                "input": e.input,
            }
            for e in index.values()
            if fnmatch.fnmatch(e.name, pattern)
        ]
    from ..models import get_spec, list_models
    from ..models.summary import model_cost, recorded_costs

    recorded = {} if args.measure else recorded_costs()
    rows = []
    for name in list_models(args.pattern):
        spec = get_spec(name)
        cost = model_cost(name, recorded)  # recorded: nothing is built unless --measure
        rows.append(
            {
                "name": name,
                "family": spec.family,
                "depth": spec.depth,
                "kind": spec.kind,
                "params": cost.params,
                "macs": None if args.no_macs else cost.macs,
                "input": spec.default_image_size,
            }
        )
    return rows


def _models(args: argparse.Namespace) -> int:
    from ..models.index import human

    rows = _rows(args)
    if args.json:
        print(json_line([{k: v for k, v in r.items() if k != "input"} for r in rows]))
        return 0
    if args.markdown:
        print(models_markdown(rows))
        return 0
    width = max([12, *(len(r["name"]) for r in rows)])
    header = (
        f"{'model':<{width}} {'family':<9} {'depth':>5} {'kind':<9} {'params':>12} {'MACs':>10}"
    )
    print(header + "  input")
    for r in rows:
        side = r["input"]
        shown = human(r["macs"]) if r["macs"] else "-"
        print(
            f"{r['name']:<{width}} {r['family']:<9} {r['depth']:>5} {r['kind']:<9} "
            f"{r['params']:>12,} {shown:>10}  3x{side}x{side}"
        )
    print("\nAny CIFAR depth 6n+2 also works (resnet8, plain14, cifar_resnet50, ...), and any")
    print("wide ResNet WRN-d-k with d = 6n+4 (wrn_16_4, wrn_22_8, ...).")
    return 0


def models_markdown(rows: list[dict]) -> str:
    """docs/models.md's table of every registered model (``resnets models --markdown``)."""
    from ..models.index import human

    lines = [
        "| model | family | depth | kind | params | MACs | input |",
        "| --- | --- | ---: | --- | ---: | ---: | --- |",
    ]
    for r in rows:
        side = r["input"]
        macs = human(r["macs"]).strip() if r["macs"] else "-"
        lines.append(
            f"| `{r['name']}` | {r['family']} | {r['depth']} | {r['kind']} | {r['params']:,} | "
            f"{macs} | 3x{side}x{side} |"
        )
    return "\n".join(lines)


def _summary(args: argparse.Namespace) -> int:
    from ..models import create_model, format_summary, get_spec, summarize

    spec = get_spec(args.model)
    net = create_model(
        args.model, num_classes=args.num_classes, in_chans=args.in_chans, shortcut=args.shortcut
    )
    size = args.image_size or spec.default_image_size
    rows = summarize(net, size)
    if args.json:
        print(
            json_line(
                [
                    {
                        "stage": r.name,
                        "output": list(r.output_shape),
                        "params": r.params,
                        "macs": r.macs,
                    }
                    for r in rows
                ]
            )
        )
    else:
        print(format_summary(spec.name, rows, size))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add models and summary to ``resnets``."""
    p = sub.add_parser("models", help="list the models with parameters and MACs")
    p.add_argument("pattern", nargs="?", default="*", help="glob, e.g. 'plain*'")
    p.add_argument("--no-macs", action="store_true", help="leave the MACs column out")
    p.add_argument(
        "--markdown", action="store_true", help="a Markdown table (docs/models.md's, kept in step)"
    )
    p.add_argument(
        "--measure",
        action="store_true",
        help="build every model and count again instead of reading the recorded table",
    )
    add_json(p, what="the table as JSON")
    p.set_defaults(fn=_models)

    p = sub.add_parser("summary", help="per-stage output shapes, parameters and MACs of a model")
    p.add_argument("model")
    p.add_argument(
        "--image-size",
        type=bounded(0, MAX_IMAGE_SIDE),
        default=0,
        help="input side in pixels (0: the model's own, 32 for CIFAR nets, 224 for ImageNet nets)",
    )
    p.add_argument(
        "--num-classes",
        type=bounded(1, 100_000),
        default=None,
        help="classes of the head (default: the model's, 10 for CIFAR nets, 1000 for ImageNet)",
    )
    p.add_argument("--in-chans", type=bounded(1, 64), default=3, help="input channels")
    p.add_argument(
        "--shortcut",
        choices=("A", "B", "C"),
        default=None,
        help="projection option of the paper (A: zero-padding, B: projections where the shape "
        "changes, C: projections everywhere); default: the model's",
    )
    add_json(p, what="the stages as JSON")
    p.set_defaults(fn=_summary)
