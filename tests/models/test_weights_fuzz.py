"""A weights file is untrusted input: records with wrong types, values out of range (every
case of BAD, half of them with an extra field from a newer writer), missing and extra fields, and tensors of the wrong dtype or shape are refused with a WeightsError
naming the file, before a model is built; the untouched record loads (the negative control)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from resnets import create_model
from resnets.errors import WeightsError
from resnets.inference import load_weights
from resnets.models.weights import META_KEY, WeightsMeta, save_weights


def _record() -> dict:
    return WeightsMeta(
        model="resnet8",
        model_kwargs={"num_classes": 3},
        classes=["a", "b", "c"],
        mean=[125.0, 123.0, 114.0],
        std=[63.0, 62.0, 66.0],
        image_size=0,
        eval_size=0,
        pad=4,
        metrics={"top1": 0.9, "top5": 1.0, "n": 30, "split": "val"},
        data="somewhere",
        data_fingerprint="abc123",
        split={"val_split": 30.0, "seed": 0, "n_train": 70, "n_val": 30},
        temperature=1.5,
    ).to_dict()


@pytest.fixture(scope="module")
def state():
    torch.manual_seed(0)
    return {k: v.clone() for k, v in create_model("resnet8", num_classes=3).state_dict().items()}


def _write(path, state, record) -> str:
    save_file(state, str(path), metadata={META_KEY: json.dumps(record)})
    return str(path)


# each field with values that must be refused: wrong types, and sizes that would allocate
# without bound (num_classes 1e8: 25 GB of classifier; eval_size 200,000: 160 GB an image)
BAD = {
    "model": [3, "", "x" * 300, None],
    "model_kwargs": [
        {"num_classes": 10**8},
        {"num_classes": 0},
        {"num_classes": True},
        {"in_chans": 10**6},
        {"depth": [1, 2]},
        {"width": 1e300},
        "resnet",
    ],
    "classes": [[1, 2, 3], "abc", [""] * 3, ["x" * 1000] * 3],
    "mean": ["x", [], [1e9] * 3, [float("nan")] * 3, [-1.0] * 3, [1.0] * 17],
    "std": [[0.0] * 3, [1e9] * 3, [float("inf")] * 3],
    "image_size": [-1, 200_000, 3.5, True, "32"],
    "eval_size": [200_000, -5, 1e6],
    "pad": [1000, -1],
    "tta": ["rot", 1],
    "interpolation": ["lanczos9"],
    "metrics": [
        {"top1": 9.75},
        {"top1": "high"},
        {"n": -3},
        [0.9],
        {f"k{i}": 0 for i in range(99)},
    ],
    "split": [{"seed": "zero"}, {"n_val": -1}, {"val_split": float("inf")}, "5000"],
    "temperature": [0.0, 1e9, float("nan"), "1.5", True],
    "command": [["resnets", "train"], "x" * 30_000],
    "params": [-1, 10**20, 1.5],
    "schema_version": ["1", -1],
}
CASES = [(field, value) for field, values in BAD.items() for value in values]


def test_the_untouched_record_loads(tmp_path, state):
    """The negative control: the same file with its record intact loads, and computes."""
    lm = load_weights(_write(tmp_path / "ok.safetensors", state, _record()))
    assert lm.classes == ["a", "b", "c"] and lm.meta.temperature == 1.5
    assert lm.model(torch.zeros(1, 3, 32, 32)).shape == (1, 3)


@pytest.mark.parametrize("number", range(len(CASES)))
def test_every_bad_field_is_refused(tmp_path, state, number):
    case, extra = CASES[number], number % 2 == 1
    field, value = case
    record = {**_record(), field: value}
    if extra:  # a field from a newer writer is ignored, never the reason for the refusal
        record["from_the_future"] = {"anything": [1, 2]}
    path = _write(tmp_path / "bad.safetensors", state, record)
    with pytest.raises(WeightsError, match="bad.safetensors") as caught:
        load_weights(path)
    assert "\n" not in str(caught.value)


def test_missing_fields(tmp_path, state):
    record = _record()
    del record["model"]
    with pytest.raises(WeightsError, match="no 'model'"):
        load_weights(_write(tmp_path / "m.safetensors", state, record))
    # a held-out split claimed without the fingerprint of the data it was drawn from
    record = {**_record(), "data_fingerprint": None}
    with pytest.raises(WeightsError, match="no data fingerprint"):
        load_weights(_write(tmp_path / "f.safetensors", state, record))
    # optional fields may be absent: the rest still loads
    minimal = {"model": "resnet8", "model_kwargs": {"num_classes": 3}}
    assert load_weights(_write(tmp_path / "min.safetensors", state, minimal)).classes == [
        "0",
        "1",
        "2",
    ]


def test_a_record_cannot_make_a_small_file_build_a_large_model(tmp_path, state):
    """num_classes within its bound but not the file's: refused before the model is built."""
    record = {**_record(), "model_kwargs": {"num_classes": 50_000}, "classes": None}
    with pytest.raises(
        WeightsError, match="asks for num_classes=50000, the file's fc.weight has 3"
    ):
        load_weights(_write(tmp_path / "big.safetensors", state, record))


@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8, torch.int32, torch.bool])
def test_tensors_of_the_wrong_dtype_are_refused(tmp_path, state, dtype):
    """Quantized int8 values are not weights to cast: the file is refused, naming the tensor."""
    bad = {**state, "conv1.weight": (state["conv1.weight"] * 100).to(dtype)}
    with pytest.raises(WeightsError, match=r"wrong dtype: conv1\.weight"):
        load_weights(_write(tmp_path / "q.safetensors", bad, _record()))


def test_half_precision_and_the_step_counter(tmp_path, state):
    """float16 and bfloat16 weights load (cast back) when their record says the file was
    stored so; cast behind the record's back, or mixed, they are refused (issue 44, round 4's
    float16). BatchNorm's counter stays an integer."""
    for dtype, name in ((torch.float16, "float16"), (torch.bfloat16, "bfloat16")):
        half = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
        said = {**_record(), "final": {"stored_dtype": name}}
        assert load_weights(_write(tmp_path / "h.safetensors", half, said)).classes
        with pytest.raises(WeightsError, match=f"wrong dtype: conv1.weight {name} where float32"):
            load_weights(_write(tmp_path / "h.safetensors", half, _record()))
        mixed = {**half, "conv1.weight": state["conv1.weight"]}
        with pytest.raises(WeightsError, match=f"conv1.weight float32 where {name} belongs"):
            load_weights(_write(tmp_path / "m.safetensors", mixed, said))
    counter = next(k for k in state if k.endswith("num_batches_tracked"))
    with pytest.raises(WeightsError, match="wrong dtype"):
        load_weights(
            _write(
                tmp_path / "c.safetensors", {**state, counter: state[counter].float()}, _record()
            )
        )


def test_a_saved_record_round_trips(tmp_path):
    model = create_model("resnet8", num_classes=3)
    meta = WeightsMeta.from_dict(_record(), "record")
    save_weights(model, tmp_path / "w.safetensors", meta)
    assert load_weights(str(tmp_path / "w.safetensors")).meta == meta
