import pytest
import torch

from seqfunc import rng
from seqfunc.models import Seq2SeqTransformer, Seq2SeqTransformerConfig
from seqfunc.serialization import CheckpointError, load_params, read_json, save_params, write_json
from seqfunc.tree import tree_leaves


def _model(d_model=16):
    return Seq2SeqTransformer(
        Seq2SeqTransformerConfig(vocab_size=10, pad_id=0, d_model=d_model, heads=2)
    )


def test_params_roundtrip(tmp_path):
    model = _model()
    params = model.init(rng.key(3))
    save_params(tmp_path / "p.safetensors", params)
    loaded = load_params(tmp_path / "p.safetensors", model.init(rng.key(0)))
    assert all(torch.equal(a, b) for a, b in zip(tree_leaves(params), tree_leaves(loaded)))
    assert isinstance(loaded["encoder"]["layers"], list)


def test_mismatched_checkpoint_names_the_problem(tmp_path):
    save_params(tmp_path / "p.safetensors", _model(16).init(rng.key(0)))
    with pytest.raises(CheckpointError, match="shape"):
        load_params(tmp_path / "p.safetensors", _model(32).init(rng.key(0)))
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_params(tmp_path / "bad.safetensors", _model().init(rng.key(0)))


def test_atomic_json_keeps_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "c.json"
    write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json(path, {"a": object()})  # not serialisable: fails mid-write
    assert read_json(path) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]  # no temp file left behind
    path.write_text('{"a": 1,\n oops}')
    with pytest.raises(CheckpointError, match="line 2"):
        read_json(path)


def test_atomic_write_gives_the_usual_permissions(tmp_path):
    import os
    import stat

    from seqfunc.serialization import write_json

    write_json(tmp_path / "c.json", {"a": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "c.json").stat().st_mode) == 0o666 & ~mask  # not mkstemp's 0600
