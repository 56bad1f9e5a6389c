"""The paper's claims as verdict builders: each claim of a page decided from a table of runs
(``RunTable``: model -> its runs' final errors, one :class:`~resnets.analysis.reports.RunFinal`
per seed), every test of the page judged together by :class:`~resnets.analysis.stats.Family`
(Holm over the page at 5% / looks). Written once, used by the reports that train the runs
(definitions.py) and by the reports judged again from their CSV files (rejudge.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from .reports import WORDS, RunTable, Spread, Verdict
from .stats import Family, PairedBySeed, combine, judge_family, paired_by_seed


def _by_seed(table: RunTable, model: str, field: str) -> dict[int, float]:
    return {r.seed: getattr(r, field) for r in table.get(model, ())}


def _spreads(table: RunTable, model: str) -> tuple[Spread, Spread]:
    runs = table.get(model, ())
    return Spread.of([r.train_err for r in runs]), Spread.of([r.val_err for r in runs])


def _missing(label: str, claim: str, *models: str) -> Verdict:
    return Verdict(label, claim, "missing", "needs " + ", ".join(models))


def _paired(table: RunTable, better: str, worse: str, field: str) -> PairedBySeed:
    """The test of "``better`` has the lower ``field``" over the seeds both models have."""
    return paired_by_seed(_by_seed(table, better, field), _by_seed(table, worse, field))


def tested(test: PairedBySeed, family: Family, scale: float = 100.0, unit: str = " points") -> str:
    """A paired test's numbers with its place in the page's family: the raw p-value, the
    Holm-adjusted one and, when left undecided, the seeds that would give 80% power."""
    note = family.note(test)
    return test.text(scale, unit) + (f"; {note}" if note else "")


def _judged(build: Callable[[Family], list[Verdict]], family: str, looks: int) -> list[Verdict]:
    """A page's verdicts decided by Holm over all its tests, each carrying the sentence that
    says how."""

    def described(fam: Family) -> list[Verdict]:
        verdicts = build(fam)
        return [replace(v, family=fam.describe()) for v in verdicts] if fam.gathered else verdicts

    return judge_family(described, family, looks)


def degradation_verdicts(
    table: RunTable, shallow: int = 20, deep: int = 56, looks: int = 1
) -> list[Verdict]:
    """Claims (a)-(c) of Fig. 6 and Table 6 from a table with plain and residual runs, each
    decided by the difference paired by seed; the page's tests are one family (Holm) tested
    at 5% / ``looks``."""
    return _judged(lambda fam: _degradation(table, shallow, deep, fam), "degradation", looks)


def _degradation(table: RunTable, shallow: int, deep: int, family: Family) -> list[Verdict]:
    p_lo, p_hi, r_lo, r_hi = (
        f"plain{shallow}",
        f"plain{deep}",
        f"resnet{shallow}",
        f"resnet{deep}",
    )
    out = []
    claim = f"plain-{deep} has higher training and validation error than plain-{shallow}"
    if not (table.get(p_lo) and table.get(p_hi)):
        out.append(_missing("(a)", claim, p_lo, p_hi))
    else:
        (lo_t, lo_v), (hi_t, hi_v) = _spreads(table, p_lo), _spreads(table, p_hi)
        train = _paired(table, p_lo, p_hi, "train_err")
        val = _paired(table, p_lo, p_hi, "val_err")
        out.append(
            Verdict(
                "(a)",
                claim,
                combine([family.outcome(train), family.outcome(val)]),
                f"training: {p_hi} {hi_t.pct()} against {p_lo} {lo_t.pct()}, paired difference "
                f"{tested(train, family)}; validation: {p_hi} {hi_v.pct()} against {p_lo} "
                f"{lo_v.pct()}, paired difference {tested(val, family)}",
            )
        )
    for label, claim, better, worse in (
        ("(b)", f"ResNet-{deep} has lower validation error than ResNet-{shallow}", r_hi, r_lo),
        ("(c)", f"ResNet-{deep} has lower validation error than plain-{deep}", r_hi, p_hi),
    ):
        out.append(_lower_val_error(table, label, claim, better, worse, family))
    return out


def _lower_val_error(
    table: RunTable,
    label: str,
    claim: str,
    better: str,
    worse: str,
    family: Family,
    kind: str = "",
) -> Verdict:
    """The claim "``better`` has the lower validation error than ``worse``", paired by seed;
    ``kind`` names what the keys are in the evidence ("option " for shortcut options)."""
    if not (table.get(better) and table.get(worse)):
        return _missing(label, claim, better, worse)
    (_, b_v), (_, w_v) = _spreads(table, better), _spreads(table, worse)
    test = _paired(table, better, worse, "val_err")
    return Verdict(
        label,
        claim,
        family.outcome(test),
        f"validation: {kind}{better} {b_v.pct()} against {kind}{worse} {w_v.pct()}; {worse} "
        f"minus {better}, paired by seed: {tested(test, family)}",
    )


def ordering_verdict(
    table: RunTable, depths: Sequence[int], label: str = "(d)", looks: int = 1
) -> Verdict:
    """Claim (d): validation error falls with depth, ResNet-20 > 32 > 44 > 56 > 110. Each
    neighbouring step is tested paired by seed, the steps corrected together (Holm) at 5% /
    ``looks``; the claim holds when every step does."""
    return _judged(lambda fam: [_ordering(table, depths, label, fam)], "cifar-table", looks)[0]


def _ordering(table: RunTable, depths: Sequence[int], label: str, family: Family) -> Verdict:
    models = [f"resnet{d}" for d in depths]
    claim = "the ordering " + " > ".join(str(d) for d in depths) + " in validation error"
    have = [m for m in models if table.get(m)]
    if len(have) < 2 or len(have) < len(models):
        return _missing(label, claim, *(m for m in models if m not in have))
    vals = [_spreads(table, m)[1] for m in models]
    steps = [
        (a, b, _paired(table, f"resnet{b}", f"resnet{a}", "val_err"))
        for a, b in zip(depths, depths[1:])
    ]
    outcomes = [family.outcome(test) for _, _, test in steps]
    evidence = "; ".join(f"ResNet-{d} {v.pct()}" for d, v in zip(depths, vals))
    evidence += "; each step, the shallower minus the deeper, paired by seed: " + "; ".join(
        f"{a}->{b} {tested(test, family)} ({WORDS[outcome]})"
        for (a, b, test), outcome in zip(steps, outcomes)
    )
    return Verdict(label, claim, combine(outcomes), evidence)


def shortcut_verdicts(table: RunTable, plain: str = "plain", looks: int = 1) -> list[Verdict]:
    """Table 3's claims from runs keyed by shortcut option (``"A"``, ``"B"``, ``"C"``) and by
    ``plain`` (the twin without shortcuts), each decided by the validation error paired by seed,
    the page's tests corrected together (Holm) at 5% / ``looks``: (g) every option beats the
    plain net, (h) projections where the shape changes (B) beat zero-padding (A), (i)
    projections everywhere (C) beat B. The paper finds (h) and (i) small (0.51 and 0.33 points
    on ImageNet) and concludes projections are not essential."""
    return _judged(lambda fam: _shortcuts(table, plain, fam), "shortcuts", looks)


def _shortcuts(table: RunTable, plain: str, family: Family) -> list[Verdict]:
    out = []
    claim = "shortcut options A, B and C each have lower validation error than the plain net"
    missing = [m for m in ("A", "B", "C", plain) if not table.get(m)]
    if missing:
        out.append(_missing("(g)", claim, *missing))
    else:
        tests = [(o, _paired(table, o, plain, "val_err")) for o in ("A", "B", "C")]
        outcomes = [family.outcome(test) for _, test in tests]
        evidence = "; ".join(
            f"{plain} minus option {o}, paired by seed: {tested(test, family)} ({WORDS[outcome]})"
            for (o, test), outcome in zip(tests, outcomes)
        )
        out.append(Verdict("(g)", claim, combine(outcomes), evidence))
    for label, claim, better, worse in (
        (
            "(h)",
            "option B (projections where the shape changes) beats option A (zero-padding)",
            "B",
            "A",
        ),
        ("(i)", "option C (projections everywhere) beats option B", "C", "B"),
    ):
        out.append(_lower_val_error(table, label, claim, better, worse, family, kind="option "))
    return out


def response_verdict(
    means: Mapping[str, Mapping[int, float]], depths: Sequence[int] = (20, 56), looks: int = 1
) -> Verdict:
    """Claim (e) of Fig. 7: residual responses are smaller than plain ones at every depth, and
    smaller for the deeper ResNet. ``means`` maps a model to its mean response std by seed;
    each comparison is paired by seed, the three corrected together (Holm) at 5% / ``looks``."""
    return _judged(lambda fam: [_responses(means, depths, fam)], "responses", looks)[0]


def _responses(
    means: Mapping[str, Mapping[int, float]], depths: Sequence[int], family: Family
) -> Verdict:
    claim = "residual responses smaller than plain ones, and smaller for deeper ResNets"
    needed = [f"{k}{d}" for d in depths for k in ("plain", "resnet")]
    missing = [m for m in needed if not means.get(m)]
    if missing:
        return _missing("(e)", claim, *missing)
    parts, outcomes = [], []
    for better, worse, what in [
        *((f"resnet{d}", f"plain{d}", f"depth {d}: ResNet against plain") for d in depths),
        (
            f"resnet{max(depths)}",
            f"resnet{min(depths)}",
            f"ResNet-{max(depths)} against ResNet-{min(depths)}",
        ),
    ]:
        test = paired_by_seed(means[better], means[worse])
        outcomes.append(family.outcome(test))
        b, w = Spread.of(list(means[better].values())), Spread.of(list(means[worse].values()))
        parts.append(
            f"{what}: {b.mean:.3f} against {w.mean:.3f}, difference "
            f"{tested(test, family, scale=1.0, unit='')}"
        )
    return Verdict(
        "(e)", claim, combine(outcomes), "mean std of 3x3 responses: " + "; ".join(parts)
    )


def preact_verdicts(
    table: RunTable, pairs: Sequence[tuple[int, str, str]], looks: int = 1
) -> list[Verdict]:
    """Identity Mappings' Table 3 ordering per depth: pre-activation units reach a lower
    validation error than the original ones, paired by seed; the depths' tests are one family
    (Holm) at 5% / ``looks``. ``pairs``: (depth, original model, pre-activation model)."""

    def build(family: Family) -> list[Verdict]:
        out = []
        for depth, original, preact in pairs:
            claim = f"pre-activation units beat the original ones at depth {depth}"
            if not (table.get(original) and table.get(preact)):
                out.append(_missing(f"(preact-{depth})", claim, original, preact))
                continue
            (_, o_v), (_, p_v) = _spreads(table, original), _spreads(table, preact)
            test = _paired(table, preact, original, "val_err")
            out.append(
                Verdict(
                    f"(preact-{depth})",
                    claim,
                    family.outcome(test),
                    f"validation: pre-activation {p_v.pct()} against original {o_v.pct()}; "
                    f"original minus pre-activation, paired by seed: {tested(test, family)}",
                )
            )
        return out

    return _judged(build, "preact", looks)


def concat_verdict(table: RunTable, summed: str, matched: str, looks: int = 1) -> Verdict:
    """Concatenating shortcuts at matched parameters (``matched``) reach a lower validation
    error than the additive ones (``summed``), paired by seed: a family of one test, at 5% /
    ``looks``."""

    def build(family: Family) -> list[Verdict]:
        claim = "concatenation at matched parameters beats the sum"
        return [_lower_val_error(table, "(concat)", claim, matched, summed, family, kind="")]

    return _judged(build, "sum-vs-concat", looks)[0]


#: transfer's run table: (mode, labelled images per class; 0 = all) -> {seed: validation error}
TransferTable = Mapping[tuple[str, int], Mapping[int, float]]


def transfer_verdict(table: TransferTable, few: int, many: int, looks: int = 1) -> Verdict:
    """The transfer claim, decided by tests paired by seed (one seed: one initialisation and one
    draw of the labelled images, shared by the modes): with the fewest labels, fine-tuning the
    pretrained network beats training from scratch, and that advantage is larger there than
    with the most labels. The page's four paired tests (the linear probe's and the advantage
    with every label included) are one family (Holm) at 5% / ``looks``."""

    def lab(n: int) -> str:
        return f"{n} labelled images per class" if n else "every labelled image"

    def build(family: Family) -> list[Verdict]:
        claim = (
            f"with {lab(few)}, fine-tuning the pretrained network beats training from scratch, "
            f"and by more than with {lab(many)}"
        )
        needed = [("fine-tuned", few), ("from scratch", few), ("fine-tuned", many),
                  ("from scratch", many)]  # fmt: skip
        if any(not table.get(k) for k in needed):
            return [_missing("(transfer)", claim, *(f"{m} at {n}" for m, n in needed))]
        helps = paired_by_seed(table["fine-tuned", few], table["from scratch", few])
        probe = paired_by_seed(table.get(("linear probe", few), {}), table["from scratch", few])
        at_many = paired_by_seed(table["fine-tuned", many], table["from scratch", many])
        shrinks = paired_by_seed(  # the few-label advantage minus the many-label advantage
            dict(zip(at_many.seeds, at_many.diffs)), dict(zip(helps.seeds, helps.diffs))
        )
        outcomes = [family.outcome(t) for t in (helps, probe, at_many, shrinks)]
        evidence = (
            f"with {lab(few)}, fine-tuning lowers the validation error against training from "
            f"scratch by {tested(helps, family)} ({WORDS[outcomes[0]]}; the linear probe: "
            f"{tested(probe, family)}); with {lab(many)}, by {tested(at_many, family)}; the "
            f"advantage with {lab(few)} minus the one with {lab(many)}: "
            f"{tested(shrinks, family)} ({WORDS[outcomes[3]]})"
        )
        return [Verdict("(transfer)", claim, combine([outcomes[0], outcomes[3]]), evidence)]

    return _judged(build, "transfer", looks)[0]


def detection_seeds(
    rows: Sequence[Mapping[str, Any]], backbones: Sequence[str]
) -> dict[str, list[int]]:
    """The finished seeds of each backbone: what a look at the detection claim saw."""
    return {
        b: sorted(int(r["seed"]) for r in rows if r["backbone"] == b and r["finished"])
        for b in backbones
    }


def detection_verdict(
    rows: Sequence[Mapping[str, Any]], residual: str, plain: str, looks: int = 1
) -> Verdict:
    """Residual against plain backbones of one detector: the mAP@[.5:.95] difference paired by
    seed (a family of one test, at 5% / ``looks``). ``rows``: one per run, with ``backbone``,
    ``seed``, ``finished`` and ``map``."""
    claim = (
        f"a residual backbone ({residual}) detects better than its plain twin ({plain}) in the "
        "same Faster R-CNN, trained from scratch for the same steps"
    )
    done = [r for r in rows if r["finished"]]
    res = {int(r["seed"]): -float(r["map"]) for r in done if r["backbone"] == residual}
    pla = {int(r["seed"]): -float(r["map"]) for r in done if r["backbone"] == plain}
    if not res or not pla:
        return Verdict(
            "(f)", claim, "missing", f"finished runs: {len(res)} {residual}, {len(pla)} {plain}"
        )

    def build(family: Family) -> list[Verdict]:
        test = paired_by_seed(res, pla)  # "better" = lower -mAP = higher mAP
        evidence = (
            f"mAP@[.5:.95] higher by {tested(test, family)} over seeds {list(test.seeds)} "
            f"({', '.join(f'{100 * d:+.2f}' for d in test.diffs)})"
        )
        return [Verdict("(f)", claim, family.outcome(test), evidence)]

    return _judged(build, "detection", looks)[0]
