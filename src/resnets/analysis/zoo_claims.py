"""The paper's claims at its whole schedule, decided on the zoo's files: each file's per-image
results (:class:`Scored`, made by :func:`..whole_schedule.score_zoo`), and claims (a)-(e) decided
from them by exact McNemar tests on the same images (a second training seed: paired by seed)
and, for Fig. 7's responses, t tests paired over the images; one Holm family per page."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from .reports import FullScheduleWeights, Verdict
from .stats import (
    Family,
    McNemar,
    PairedBySeed,
    combine,
    judge_family,
    mcnemar_exact,
    paired_by_seed,
)

#: the rows of Table 6 as the paper prints them (n, depth 6n+2), then the plain twins of Fig. 6
DEPTHS = (20, 32, 44, 56, 110)
PLAIN_DEPTHS = (20, 56)
MODELS = (*(f"resnet{d}" for d in DEPTHS), *(f"plain{d}" for d in PLAIN_DEPTHS))
#: Fig. 7's responses are measured on the first this many held-out images (in the split's order)
RESPONSE_IMAGES = 1000
#: the nets also scored on the images they trained on: claim (a) is about training error too
#: (the paper's Fig. 6, left: plain-56 has the higher training error as well)
TRAINING_SCORED = tuple(f"plain{d}" for d in PLAIN_DEPTHS)
#: the images a net is scored on: its held-out split, or the images it trained on
Images = Literal["held-out", "training"]


@dataclass(frozen=True)
class Scored:
    """A zoo weights set and its per-image correctness on its held-out split."""

    weights: FullScheduleWeights
    indices: np.ndarray  # the images scored, in order (indices into the data set)
    hits: np.ndarray  # bool: the top-1 class was right
    top1_recorded: float  # the accuracy the weights' record states
    # Fig. 7: each 3x3 layer's response std to each of the first RESPONSE_IMAGES held-out
    # images alone, (images, layers)
    responses: np.ndarray
    # claim (a)'s training error: the images trained on, in order, and the per-image hits on
    # them in eval mode, without augmentation (scored for TRAINING_SCORED only; empty else)
    train_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    train_hits: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    # the held-out error of every training seed's file of this model on the same split
    # (``resnet56.cifar10_seed1`` is seed 1); empty: seed 0's file alone
    seed_errors: Mapping[int, float] = field(default_factory=dict)

    @property
    def val_err(self) -> float:
        return 1.0 - float(self.hits.mean())

    @property
    def train_err(self) -> float:
        """The error on the training images in eval mode (nan when they were not scored)."""
        return 1.0 - float(self.train_hits.mean()) if len(self.train_hits) else math.nan

    def by_seed(self) -> dict[int, float]:
        """The held-out error by training seed, this file's (seed 0) included."""
        return {0: self.val_err, **self.seed_errors}

    def error(self, images: Images) -> float:
        """The error on ``images``: ``held-out`` or ``training``."""
        return self.val_err if images == "held-out" else self.train_err

    def on(self, images: Images) -> tuple[np.ndarray, np.ndarray]:
        """The indices and per-image hits on ``images``: ``held-out`` or ``training``."""
        if images == "held-out":
            return self.indices, self.hits
        return self.train_indices, self.train_hits


def training_seed(name: str, model: str) -> int | None:
    """The training seed of a zoo file by its name: ``MODEL.cifar10`` is seed 0,
    ``MODEL.cifar10_seedN`` (``zoo_ship.sh`` with SEED=N) seed N; None for any other name."""
    if name == f"{model}.cifar10":
        return 0
    tail = name.removeprefix(f"{model}.cifar10_seed")
    return int(tail) if tail != name and tail.isdigit() else None


def _test(
    scored: Mapping[str, Scored], better: str, worse: str, images: Images = "held-out"
) -> McNemar | None:
    """The exact McNemar test of ``better`` against ``worse`` on the same ``images``
    (``held-out`` or ``training``); None when either net, or its scores there, is missing."""
    if better not in scored or worse not in scored:
        return None
    (index_a, hits_a), (index_b, hits_b) = scored[better].on(images), scored[worse].on(images)
    if not len(hits_a) or not len(hits_b):
        return None
    if not np.array_equal(index_a, index_b):
        raise ValueError(f"{better} and {worse} were not scored on the same {images} images")
    return mcnemar_exact(hits_a.tolist(), hits_b.tolist())


def display_name(model: str) -> str:
    """``resnet56`` -> ``ResNet-56``, ``plain20`` -> ``plain-20``."""
    return model.replace("resnet", "ResNet-").replace("plain", "plain-")


def whole_schedule_verdicts(scored: Mapping[str, Scored]) -> list[Verdict]:
    """Claims (a)-(d) at the whole schedule, each by the exact McNemar test on the held-out
    images: (a) plain-56 against plain-20 (on their training images too), (b) ResNet-56
    against ResNet-20, (c) ResNet-56 against plain-56, (d) every neighbouring pair of depths;
    and (e), Fig. 7's response stds, by t tests paired over the same images. A claim whose
    two models have files of several training seeds is tested paired by seed instead. Every
    test made is one family, corrected by Holm: one look while each test compares two fixed
    files, two once seeds were added (the seed-0 files were judged first)."""

    def build(family: Family) -> list[Verdict]:
        verdicts = _verdicts(scored, family)
        return [replace(v, family=family.describe(), whole_schedule=True) for v in verdicts]

    # a claim paired by training seed is a second look at it: the first judged seed 0's files
    return judge_family(build, "whole schedule", looks=2 if seed_paired(scored) else 1)


def _common_seeds(scored: Mapping[str, Scored], better: str, worse: str) -> list[int]:
    if better not in scored or worse not in scored:
        return []
    return sorted(scored[better].by_seed().keys() & scored[worse].by_seed().keys())


def seed_paired(scored: Mapping[str, Scored]) -> list[str]:
    """The labels of claims (a)-(c) decided by a test paired by training seed: those whose two
    models have files of two or more training seeds in common."""
    return [
        claim.label
        for claim in PAIR_CLAIMS
        if "held-out" in claim.images and len(_common_seeds(scored, claim.better, claim.worse)) >= 2
    ]


def _tested(test: McNemar, family: Family) -> str:
    note = family.note(test)
    return test.text() + (f", {note}" if note else "")


@dataclass(frozen=True)
class PairClaim:
    """One of claims (a)-(c) at the whole schedule: the paper's better net against the worse,
    tested on each of ``images``."""

    label: str
    better: str
    worse: str
    text: str
    images: tuple[Images, ...] = ("held-out",)


#: training error is part of (a) only (the paper's Fig. 6, left)
PAIR_CLAIMS = (
    PairClaim(
        "(a, whole schedule)",
        "plain20",
        "plain56",
        "plain-56 has higher training and validation error than plain-20",
        ("training", "held-out"),
    ),
    PairClaim(
        "(b, whole schedule)",
        "resnet56",
        "resnet20",
        "ResNet-56 has lower validation error than ResNet-20",
    ),
    PairClaim(
        "(c, whole schedule)",
        "resnet56",
        "plain56",
        "ResNet-56 has lower validation error than plain-56",
    ),
)


def _pair_verdict(scored: Mapping[str, Scored], family: Family, claim: PairClaim) -> Verdict:
    """One of claims (a)-(c): a McNemar test per set of images (the held-out images of files
    of two or more training seeds: a test paired by seed), the claim holding when each does (a
    claim whose nets or images are not all scored yet is missing)."""
    better, worse = claim.better, claim.worse
    missing = [m for m in (better, worse) if m not in scored]
    if missing:
        return Verdict(claim.label, claim.text, "missing", "needs " + ", ".join(missing))
    names = {m: display_name(m) for m in (better, worse)}
    parts, outcomes, unscored = [], [], []
    for where in claim.images:
        seeds = _common_seeds(scored, better, worse) if where == "held-out" else []
        if len(seeds) >= 2:  # the seed-to-seed spread of training is in this test
            errors = {m: scored[m].by_seed() for m in (better, worse)}
            by_seed = paired_by_seed(errors[better], errors[worse])
            outcomes.append(family.outcome(by_seed))
            shown = {m: " / ".join(f"{100 * errors[m][k]:.2f}%" for k in seeds) for m in errors}
            note = family.note(by_seed)
            parts.append(
                f"{names[better]} {shown[better]} against {names[worse]} {shown[worse]} "
                f"(training seeds {', '.join(map(str, seeds))}, each file scored on the same "
                f"held-out images), paired by training seed: {by_seed.text()}"
                + (f", {note}" if note else "")
            )
            continue
        test = _test(scored, better, worse, where)
        if test is None:
            unscored.append(where)
            continue
        outcome = family.outcome(test)
        outcomes.append(outcome)
        part = (
            f"{names[better]} {100 * scored[better].error(where):.2f}% against {names[worse]} "
            f"{100 * scored[worse].error(where):.2f}%: {_tested(test, family)}"
        )
        n = len(scored[better].on(where)[1])
        several = len(claim.images) > 1
        parts.append(f"{where} images ({n:,}): {part} ({outcome})" if several else part)
    outcome = combine(outcomes, waiting=bool(unscored))
    if unscored:
        parts.append("not scored on the " + " and ".join(unscored) + " images")
    return Verdict(claim.label, claim.text, outcome, "; ".join(parts))


def _verdicts(scored: Mapping[str, Scored], family: Family) -> list[Verdict]:
    out = [_pair_verdict(scored, family, claim) for claim in PAIR_CLAIMS]
    present = [d for d in DEPTHS if f"resnet{d}" in scored]
    claim = "the ordering " + " > ".join(str(d) for d in DEPTHS) + " in validation error"
    steps = [
        (a, b, test)
        for a, b in zip(present, present[1:])
        if (test := _test(scored, f"resnet{b}", f"resnet{a}")) is not None
    ]
    outcomes = [family.outcome(test) for _, _, test in steps]
    evidence = "; ".join(
        f"{a}->{b}: {100 * scored[f'resnet{a}'].val_err:.2f}% -> "
        f"{100 * scored[f'resnet{b}'].val_err:.2f}%, {_tested(test, family)} ({outcome})"
        for (a, b, test), outcome in zip(steps, outcomes)
    )
    missing = [f"resnet{d}" for d in DEPTHS if d not in present]
    outcome = combine(outcomes, waiting=bool(missing))
    if missing:
        evidence = (evidence + "; " if evidence else "") + "needs " + ", ".join(missing)
    out.append(Verdict("(d, whole schedule)", claim, outcome, evidence))
    out.append(_responses_verdict(scored, family))
    return out


def _image_means(scored: Scored) -> dict[int, float]:
    """Each measured image's response std averaged over the net's 3x3 layers, by image."""
    first = scored.indices[: len(scored.responses)]
    return {int(i): float(v) for i, v in zip(first, scored.responses.mean(axis=1))}


def _by_image(test: PairedBySeed, family: Family) -> str:
    if not math.isfinite(test.p_value):
        return f"{test.mean:+.3f} (no test: no spread over the images)"
    return (
        f"{test.mean:+.3f} (95% CI {test.low:+.3f} to {test.high:+.3f}, {test.n} images "
        f"paired, p {_p(test.p_value)}, Holm-adjusted p {_p(family.adjusted(test))})"
    )


def _p(p: float) -> str:
    # below double precision's reach the t distribution's tail rounds to 0: say so, not "0"
    return "< 1e-15" if p < 1e-15 else f"= {p:.3g}"


def _responses_verdict(scored: Mapping[str, Scored], family: Family) -> Verdict:
    """Claim (e) at the whole schedule, Fig. 7: the mean response std of each ResNet against
    its plain twin, and ResNet-56 against ResNet-20, each paired over the same held-out images
    (a t test on the per-image differences)."""
    claim = "residual responses smaller than plain ones, and smaller for deeper ResNets"
    pairs = [
        *((f"resnet{d}", f"plain{d}", f"depth {d}: ResNet against plain") for d in PLAIN_DEPTHS),
        ("resnet56", "resnet20", "ResNet-56 against ResNet-20"),
    ]
    parts, outcomes, missing = [], [], []
    for better, worse, what in pairs:
        if better not in scored or worse not in scored:
            missing += [m for m in (better, worse) if m not in scored and m not in missing]
            continue
        a, b = _image_means(scored[better]), _image_means(scored[worse])
        if a.keys() != b.keys():
            raise ValueError(f"{better} and {worse}: responses measured on different images")
        test = paired_by_seed(a, b)  # keyed by image: the test is paired over the images
        outcomes.append(family.outcome(test))
        mean_a, mean_b = (float(np.mean(list(x.values()))) for x in (a, b))
        parts.append(f"{what}: {mean_a:.3f} against {mean_b:.3f}, {_by_image(test, family)}")
    outcome = combine(outcomes, waiting=bool(missing))
    if missing:
        parts.append("needs " + ", ".join(missing))
    measured = max((len(s.responses) for s in scored.values()), default=0)
    evidence = (
        f"mean std of 3x3 responses per image, over the first {measured:,} held-out images: "
        + "; ".join(parts)
    )
    return Verdict("(e, whole schedule)", claim, outcome, evidence)


def seeds_sentence(scored: Mapping[str, Scored]) -> str:
    """What the page's tests compare: weights files, or (for a claim with files of several
    training seeds) architectures, with the seed-to-seed spread in the test."""
    paired = seed_paired(scored)
    if not paired:
        return (
            "**One weights file per depth (one training seed)**: each test compares two sets "
            "of weights on the same images, not two architectures; the seed-to-seed spread of "
            "training is not in it, and a verdict here says nothing about another training seed."
        )
    labels = ", ".join(label.split(",")[0] + ")" for label in paired)
    return (
        f"**{labels} paired by training seed**: each training seed's files (all holding out "
        "the same images) give one difference of held-out error, and the t test over the "
        "seeds has the seed-to-seed spread of training in it; adding those seeds was a second "
        "look at the page, counted above. **Every other test compares one weights file per "
        "depth (training seed 0)**: two sets of weights on the same images, not two "
        "architectures."
    )
