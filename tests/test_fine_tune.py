"""Fine-tuning from a run folder (``--init-from``): full fine-tuning and LoRA adapters, their
resume, a vmapped sweep of adapters, ``export --merge``, and each bad input as one line."""

import json
import shutil

import attrs
import pytest
import torch
from safetensors.torch import load_file

from seqfunc import rng
from seqfunc.cli import main
from seqfunc.inference.generate import generate
from seqfunc.models.lora import LoRAModel
from seqfunc.pretrained.architectures import architecture_for_model
from seqfunc.pretrained.convert import params_from_hf
from seqfunc.pretrained.reader import WeightFolder
from seqfunc.runs import TrainConfig, fit
from seqfunc.runs.build import build
from seqfunc.runs.load import load_run
from seqfunc.tree import flatten_dict

DATA = dict(n_train=400, n_val=64, context=16, eval_slices=4)
COMMON = dict(
    dataset="toy_grammar",
    model="llama",
    batch_size=8,
    examples=0,
    dataset_options=DATA,
    warmup_steps=0,
    schedule="constant",
    lr=3e-3,
)
LORA = dict(lora_rank=2, lora_alpha=4.0, lora_targets=("q", "v"))
TRAIN_ARGS = ["train", "toy_grammar", "--no-progress", "--batch-size", "8", "--examples", "0"]
TRAIN_ARGS += [f"-d{k}={v}" for k, v in DATA.items()]


def quiet_fit(cfg, out, **kwargs):
    return fit(cfg, out, progress=False, log=lambda line: None, **kwargs)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "run"
    options = dict(d_model=16, heads=4, kv_heads=2, layers=2, d_ff=32)
    quiet_fit(TrainConfig(**COMMON, steps=3, model_options=options), out)
    return out


def params_of(folder):
    return load_file(str(folder / "params.safetensors"))


def test_full_fine_tuning_starts_from_the_run_and_resumes_bit_for_bit(base_run, tmp_path):
    cfg = TrainConfig(**COMMON, steps=4, init_from=str(base_run))
    _, model, _ = build(cfg)
    start = flatten_dict(model.init(rng.key(5)))
    base = params_of(base_run)
    assert start.keys() == base.keys() and all(torch.equal(start[k], base[k]) for k in base)
    quiet_fit(cfg, tmp_path / "whole")
    quiet_fit(TrainConfig(**{**COMMON, "steps": 2}, init_from=str(base_run)), tmp_path / "cut")
    quiet_fit(cfg, tmp_path / "cut", resume=True)
    whole, cut = params_of(tmp_path / "whole"), params_of(tmp_path / "cut")
    assert all(torch.equal(whole[k], cut[k]) for k in whole)
    assert any(not torch.equal(whole[k], base[k]) for k in base)  # it did train


def test_lora_trains_the_adapters_only_and_resumes_bit_for_bit(base_run, tmp_path):
    base_bytes = (base_run / "params.safetensors").read_bytes()
    cfg = TrainConfig(**COMMON, steps=4, init_from=str(base_run), **LORA)
    quiet_fit(cfg, tmp_path / "whole")
    adapters = params_of(tmp_path / "whole")
    assert set(adapters) == {
        f"layers.{i}.attn.{m}.{p}" for i in range(2) for m in "qv" for p in "ab"
    }
    assert any(t.abs().sum() > 0 for k, t in adapters.items() if k.endswith(".b"))
    assert (base_run / "params.safetensors").read_bytes() == base_bytes
    opt_state = load_file(str(tmp_path / "whole" / "opt_state.safetensors"))
    n_adapter = sum(t.numel() for t in adapters.values())
    assert max(t.numel() for t in opt_state.values()) == n_adapter  # moments of adapters only
    # the cut run and a copy of its base move together to another tree before the resume
    shutil.copytree(base_run, tmp_path / "runs" / "base")
    cut_cfg = TrainConfig(**{**COMMON, "steps": 2}, init_from=str(tmp_path / "runs" / "base"))
    quiet_fit(attrs.evolve(cut_cfg, **LORA), tmp_path / "runs" / "cut")
    (tmp_path / "elsewhere").mkdir()
    moved = (tmp_path / "runs").rename(tmp_path / "elsewhere" / "runs") / "cut"
    assert json.loads((moved / "config.json").read_text())["train"]["init_from"] == "../base"
    assert main(["train", "--resume", str(moved), "--steps", "4", "--no-progress"]) == 0
    cut = params_of(moved)
    assert all(torch.equal(adapters[k], cut[k]) for k in adapters)
    lora = load_run(moved)
    assert generate(lora.model, lora.params, torch.tensor([[1]]), 3, key=rng.key(0)).shape == (1, 4)
    # an older run's config.json holds the absolute path: it reads as it is
    config = json.loads((tmp_path / "whole" / "config.json").read_text())
    config["train"]["init_from"] = str(base_run.resolve())
    (tmp_path / "whole" / "config.json").write_text(json.dumps(config))
    run = load_run(tmp_path / "whole")
    assert isinstance(run.model, LoRAModel)
    tokens = torch.randint(0, 8, (2, 8), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        run.model.apply(run.params, tokens),
        run.model.base_model.apply(run.model.merged(run.params), tokens),
        atol=1e-5,
        rtol=1e-5,
    )


def test_export_merge_writes_the_merged_weights(base_run, tmp_path, capsys):
    cfg = TrainConfig(**COMMON, steps=2, init_from=str(base_run), **LORA)
    quiet_fit(cfg, tmp_path / "lora")
    out = tmp_path / "merged"
    err = one_line_error(
        capsys, ["export", str(tmp_path / "lora"), "--format", "hf", "--out", str(out)]
    )
    assert "--merge" in err and not out.exists()
    assert (
        main(["export", str(tmp_path / "lora"), "--format", "hf", "--merge", "--out", str(out)])
        == 0
    )
    run = load_run(tmp_path / "lora")
    base_model = run.model.base_model
    arch = architecture_for_model("llama")
    merged = params_from_hf(WeightFolder(out), arch.table, base_model)
    tokens = torch.randint(0, 8, (2, 8), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(
        base_model.apply(merged, tokens),
        run.model.apply(run.params, tokens),
        atol=1e-5,
        rtol=1e-5,
    )
    assert not torch.allclose(  # and the adapters mattered
        base_model.apply(run.model.base_params, tokens), base_model.apply(merged, tokens)
    )


def test_a_member_of_a_lora_sweep_equals_its_single_run(base_run, tmp_path, capsys):
    lora = ["-t", "lora_rank=2", "-t", "lora_alpha=4", "-t", "lora_targets=q,v"]
    common = [
        "toy_grammar", "--init-from", str(base_run), "--steps", "3", "--batch-size", "8",
        "--examples", "0", "--schedule", "constant", "--warmup-steps", "0", "--no-progress",
        *[f"-d{k}={v}" for k, v in DATA.items()], *lora,
    ]  # fmt: skip
    assert main(["sweep", *common, "--grid", "lr=1e-3,1e-2", "--out", str(tmp_path / "s")]) == 0
    assert main(["train", *common, "--lr", "1e-2", "--out", str(tmp_path / "one")]) == 0
    members = sorted((tmp_path / "s" / "members").iterdir())
    single = params_of(tmp_path / "one")
    matches = [
        m for m in members if json.loads((m / "config.json").read_text())["train"]["lr"] == 1e-2
    ]
    assert len(matches) == 1
    member = params_of(matches[0])
    assert member.keys() == single.keys()
    for k in single:
        torch.testing.assert_close(member[k], single[k], atol=1e-6, rtol=1e-5)


def one_line_error(capsys, argv):
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_bad_fine_tuning_input_is_one_line(base_run, tmp_path, capsys):
    run = str(base_run)
    err = one_line_error(
        capsys, [*TRAIN_ARGS, "--init-from", run, "--d-model", "32", "--steps", "1"]
    )
    assert "change the shapes" in err
    err = one_line_error(
        capsys, [*TRAIN_ARGS, "--init-from", run, "--model", "gpt", "--steps", "1"]
    )
    assert "its model is 'llama'" in err
    err = one_line_error(capsys, [*TRAIN_ARGS, "--init-from", str(tmp_path), "--steps", "1"])
    assert "not a run folder" in err
    err = one_line_error(capsys, [*TRAIN_ARGS, "-t", "lora_rank=2", "--steps", "1"])
    assert "--init-from" in err
    lora = ["-t", "lora_rank=2", "-t", "lora_targets=qkv"]
    err = one_line_error(capsys, [*TRAIN_ARGS, "--init-from", run, *lora, "--steps", "1"])
    assert "'qkv' names no 2-D weight" in err
    (tmp_path / "t.txt").write_text("abcab cab " * 200)
    other = ["train", "text", "--no-progress", f"-dpath={tmp_path / 't.txt'}", "-dcontext=8"]
    err = one_line_error(capsys, [*other, "--init-from", run, "--steps", "1"])
    assert "vocabulary" in err


def test_fine_tune_an_imported_model_on_text_with_its_tokenizer(tmp_path, capsys):
    pytest.importorskip("tokenizers", reason="tokenizer.json needs tokenizers")
    from tests.test_pretrained_import import hf_folder

    folder, _ = hf_folder(tmp_path / "hf", extra_config={"eos_token_id": 2})
    assert main(["import", str(folder), "--out", str(tmp_path / "llama")]) == 0
    (tmp_path / "notes.txt").write_text(" ".join(f"w{i % 17}" for i in range(600)))
    data = [f"-dpath={tmp_path / 'notes.txt'}", "-dcontext=16", "-deval_slices=8"]
    argv = ["train", "pretrained", *data, "--init-from", str(tmp_path / "llama"), "--steps", "2"]
    argv += ["--batch-size", "4", "--no-progress", "--examples", "0"]
    argv += ["-t", "lora_rank=2", "--out", str(tmp_path / "tuned")]
    assert main(argv) == 0
    capsys.readouterr()
    tuned = ["generate", str(tmp_path / "tuned"), "--prompt", "w1 w2", "--tokens", "3"]
    assert main([*tuned, "--temperature", "0"]) == 0
    assert 2 < len(capsys.readouterr().out.split()) <= 5
    assert load_run(tmp_path / "tuned").dataset.config.eos_ids == (2,)  # the imported eos
