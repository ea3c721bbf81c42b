"""``seqfunc import`` / ``export`` on Hugging Face folders written without transformers (from
seqfunc's own tables): sharded and pickled weights, the commands that take the run, and every
bad input as one line. A folder is data: a pickle that would run code is refused unrun."""

import json
import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from seqfunc import rng
from seqfunc.cli import main
from seqfunc.models.llama import Llama, LlamaConfig
from seqfunc.pretrained.architectures import architecture_for_model
from seqfunc.pretrained.convert import params_to_hf
from seqfunc.runs.load import load_run
from seqfunc.tree import flatten_dict

tokenizers = pytest.importorskip("tokenizers", reason="tokenizer.json needs tokenizers")

VOCAB = 64
CONFIG = LlamaConfig(
    vocab_size=VOCAB, d_model=16, heads=4, kv_heads=2, layers=2, d_ff=24, context=64
)


def write_tokenizer(folder):
    tok = tokenizers.Tokenizer(
        tokenizers.models.WordLevel({f"w{i}": i for i in range(VOCAB)}, unk_token="w0")
    )
    tok.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    tok.decoder = tokenizers.decoders.WordPiece()
    tok.save(str(folder / "tokenizer.json"))


def hf_folder(folder, *, tokenizer=True, shards=1, extra_config=None):
    """A Llama folder in Hugging Face's layout: ``(folder, {HF name: tensor})``."""
    folder.mkdir(parents=True)
    arch = architecture_for_model("llama")
    tensors = params_to_hf(Llama(CONFIG).init(rng.key(3)), arch.table, tied=False)
    config = {**arch.to_hf(CONFIG), **(extra_config or {})}
    (folder / "config.json").write_text(json.dumps(config))
    if shards == 1:
        save_file(tensors, str(folder / "model.safetensors"))
    else:
        names = sorted(tensors)
        weight_map = {}
        for s in range(shards):
            shard = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            part = {n: tensors[n] for n in names[s::shards]}
            save_file(part, str(folder / shard))
            weight_map.update(dict.fromkeys(part, shard))
        (folder / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {}, "weight_map": weight_map})
        )
    if tokenizer:
        write_tokenizer(folder)
    return folder, tensors


def one_line_error(capsys, argv, *fragments):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_import_then_generate_predict_check_and_export(tmp_path, capsys):
    folder, tensors = hf_folder(tmp_path / "hf")
    assert main(["import", str(folder), "--out", str(tmp_path / "run")]) == 0
    run = load_run(tmp_path / "run")
    reference = Llama(CONFIG).init(rng.key(3))
    for name, value in flatten_dict(reference).items():
        assert torch.equal(flatten_dict(run.params)[name], value), name
    capsys.readouterr()
    argv = ["generate", str(tmp_path / "run"), "--prompt", "w5 w6", "--tokens", "4"]
    assert main([*argv, "--temperature", "0"]) == 0
    words = capsys.readouterr().out.split()
    assert len(words) == 6 and all(w.startswith("w") for w in words)
    assert main(["predict", str(tmp_path / "run"), "--json", "--tokens", "3", "w1 w2"]) == 0
    prediction = json.loads(capsys.readouterr().out)
    assert prediction["input"] == "w1 w2" and len(prediction["continuation"].split()) == 3
    assert main(["check", str(tmp_path / "run"), "--no-compile", "--examples", "3"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["model"] == "llama"
    assert (
        main(["export", str(tmp_path / "run"), "--format", "hf", "--out", str(tmp_path / "back")])
        == 0
    )
    from safetensors.torch import load_file

    back = load_file(str(tmp_path / "back" / "model.safetensors"))
    assert back.keys() == tensors.keys()
    assert all(torch.equal(back[n], tensors[n]) for n in tensors)
    assert (tmp_path / "back" / "tokenizer.json").is_file()


def test_sharded_and_pickled_weights_import_alike(tmp_path):
    folder, tensors = hf_folder(tmp_path / "sharded", shards=3)
    assert main(["import", str(folder), "--out", str(tmp_path / "a")]) == 0
    sharded = load_run(tmp_path / "a")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((folder / "config.json").read_text())
    write_tokenizer(pickled)
    torch.save(tensors, pickled / "pytorch_model.bin")
    assert main(["import", str(pickled), "--out", str(tmp_path / "b")]) == 0
    other = load_run(tmp_path / "b")
    for (name, a), b in zip(
        flatten_dict(sharded.params).items(), flatten_dict(other.params).values()
    ):
        assert torch.equal(a, b), name


class RunsCode:
    """Unpickled unsafely, this would create the file ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mknod, (self.marker,))


def test_a_pickle_that_would_run_code_is_refused_unrun(tmp_path, capsys):
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(architecture_for_model("llama").to_hf(CONFIG)))
    write_tokenizer(folder)
    marker = tmp_path / "code-ran"
    torch.save({"model.norm.weight": RunsCode(str(marker))}, folder / "pytorch_model.bin")
    with open(folder / "legacy.bin", "wb") as f:  # the pre-zip format: a bare pickle
        pickle.dump({"model.norm.weight": RunsCode(str(marker))}, f)
    err = one_line_error(
        capsys,
        ["import", str(folder), "--out", str(tmp_path / "run")],
        "refused",
        "pytorch_model.bin",
    )
    assert not marker.exists(), err
    assert not (tmp_path / "run").exists()
    os.replace(folder / "legacy.bin", folder / "pytorch_model.bin")
    one_line_error(capsys, ["import", str(folder), "--out", str(tmp_path / "run")], "refused")
    assert not marker.exists()


def test_auto_map_is_ignored_and_named(tmp_path, capsys):
    folder, _ = hf_folder(
        tmp_path / "hf", extra_config={"auto_map": {"AutoModelForCausalLM": "m.M"}}
    )
    assert main(["import", str(folder), "--out", str(tmp_path / "run")]) == 0
    assert "auto_map ignored: no code from the folder runs" in capsys.readouterr().err


def test_unsupported_architecture(tmp_path, capsys):
    folder, _ = hf_folder(tmp_path / "hf", extra_config={"architectures": ["FalconForCausalLM"]})
    one_line_error(
        capsys,
        ["import", str(folder), "--out", str(tmp_path / "run")],
        "FalconForCausalLM",
        "LlamaForCausalLM",
        "GPT2LMHeadModel",
    )


def test_missing_shard(tmp_path, capsys):
    folder, _ = hf_folder(tmp_path / "hf", shards=2)
    (folder / "model-00002-of-00002.safetensors").unlink()
    one_line_error(
        capsys,
        ["import", str(folder), "--out", str(tmp_path / "run")],
        "model-00002-of-00002.safetensors",
        "missing",
    )


def test_tensor_of_the_wrong_shape(tmp_path, capsys):
    folder, tensors = hf_folder(tmp_path / "hf")
    tensors["model.layers.1.self_attn.k_proj.weight"] = torch.zeros(4, 16)
    save_file(tensors, str(folder / "model.safetensors"))
    one_line_error(
        capsys,
        ["import", str(folder), "--out", str(tmp_path / "run")],
        "model.layers.1.self_attn.k_proj.weight",
        "(4, 16)",
        "(8, 16)",
    )


def test_missing_and_unknown_tensors(tmp_path, capsys):
    folder, tensors = hf_folder(tmp_path / "hf")
    del tensors["model.norm.weight"]
    save_file(tensors, str(folder / "model.safetensors"))
    one_line_error(
        capsys, ["import", str(folder), "--out", str(tmp_path / "a")], "model.norm.weight"
    )
    tensors["model.norm.weight"] = torch.ones(16)
    tensors["model.layers.0.self_attn.q_norm.weight"] = torch.ones(4)
    save_file(tensors, str(folder / "model.safetensors"))
    one_line_error(capsys, ["import", str(folder), "--out", str(tmp_path / "b")], "q_norm")


def test_no_tokenizer_is_one_line_and_bytes_only_when_asked(tmp_path, capsys):
    folder, _ = hf_folder(tmp_path / "hf", tokenizer=False)
    one_line_error(
        capsys,
        ["import", str(folder), "--out", str(tmp_path / "run")],
        "tokenizer.json",
        "--byte-tokenizer",
    )
    assert not (tmp_path / "run").exists()
    small = main(["import", str(folder), "--out", str(tmp_path / "run"), "--byte-tokenizer"])
    assert small == 2 and "bytes need 256" in capsys.readouterr().err


def test_out_must_be_new_and_folder_must_exist(tmp_path, capsys):
    folder, _ = hf_folder(tmp_path / "hf")
    (tmp_path / "taken").mkdir()
    one_line_error(
        capsys, ["import", str(folder), "--out", str(tmp_path / "taken")], "already exists"
    )
    one_line_error(
        capsys, ["import", str(tmp_path / "nope"), "--out", str(tmp_path / "r")], "no such folder"
    )


def test_export_refuses_a_model_without_a_hugging_face_layout(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(
        json.dumps(
            {
                "dataset": {"name": "pretrained", "config": {"tokenizer": "bytes"}},
                "model": {"name": "lstm_lm", "config": {"vocab_size": 256}},
            }
        )
    )
    from seqfunc.models.lstm_lm import LSTMLM, LSTMLMConfig
    from seqfunc.serialization import save_params

    save_params(run / "params.safetensors", LSTMLM(LSTMLMConfig(vocab_size=256)).init(rng.key(0)))
    one_line_error(
        capsys,
        ["export", str(run), "--format", "hf", "--out", str(tmp_path / "hf")],
        "lstm_lm",
        "gpt2, llama",
    )
