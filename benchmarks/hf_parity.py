"""seqfunc against Hugging Face ``transformers`` on the same Llama-shaped model (fp32, CPU).

One random Llama (default 6 layers, d_model 512, 8 heads, 4 key/value heads) is built with
``transformers``, saved and imported with ``seqfunc import``'s code, so both sides hold the
same weights. Two comparisons, each interleaved in one process, median of rounds:

* training step (forward + backward + AdamW with clipping, the same batch every step):
  ``transformers``' eager module and ``torch.optim.AdamW`` against seqfunc's compiled step
  (``make_step(..., compile=True)``, flat AdamW); seqfunc's eager step is shown too;
* cached greedy generation: ``model.generate(do_sample=False)`` against
  ``seqfunc.inference.generate.generate(temperature=0, compile=True)``; the tokens must be identical.
  Compilation happens in a warm-up run and is reported apart.

    python benchmarks/hf_parity.py [--layers 6] [--d-model 512] [--rounds 3] [--tokens 64]

Goals: training step >= 1.2x, generation >= 1.5x transformers. Last line: JSON
{train_step_s, hf_train_step_s, train_speedup, tokens_per_s, hf_tokens_per_s,
generation_speedup, identical_tokens, ...}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from seqfunc import optim, rng
from seqfunc.inference.generate import generate
from seqfunc.pretrained import import_folder
from seqfunc.runs.load import load_run
from seqfunc.tasks.language_model import LanguageModelTask
from seqfunc.train import init_state, make_step

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_all import cpu  # noqa: E402
from timing import interleaved_seconds_per_step  # noqa: E402


def hf_llama(args):
    import transformers

    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=args.vocab,
        hidden_size=args.d_model,
        intermediate_size=args.d_model * 8 // 3 // 64 * 64,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
    )
    return transformers.LlamaForCausalLM(config).eval()


def hf_train_step(model):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)

    def step(batch):
        logits = model(batch["inputs"]).logits
        loss = F.cross_entropy(logits.flatten(0, 1), batch["targets"].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.detach()

    return step


def seqfunc_train_step(model, params, compile):
    opt = optim.flatten(
        optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(1e-4, weight_decay=0.1))
    )
    train_step = make_step(LanguageModelTask().loss_fn(model), opt, compile=compile)
    state = init_state(params, opt)
    key = rng.key(1)

    def step(batch):
        nonlocal state
        state, metrics = train_step(state, batch, key)
        return metrics["loss"]

    return step


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--tokens", type=int, default=64, help="new tokens to generate")
    parser.add_argument("--prompt", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2, help="training steps a round")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    hf = hf_llama(args)
    with tempfile.TemporaryDirectory() as tmp:
        hf.save_pretrained(Path(tmp) / "hf")
        import_folder(Path(tmp) / "hf", Path(tmp) / "run", byte_tokenizer=True, log=lambda s: 0)
        run = load_run(Path(tmp) / "run")
    model, params = run.model, run.params

    # -- generation -----------------------------------------------------------------------
    prompt = rng.random_bits(rng.key(2), (1, args.prompt)) % args.vocab

    def ours():
        return generate(
            model, params, prompt, args.tokens, key=rng.key(0), temperature=0, compile=True
        )

    def theirs():
        with torch.no_grad():
            return hf.generate(
                prompt,
                attention_mask=torch.ones_like(prompt),
                max_new_tokens=args.tokens,
                min_new_tokens=args.tokens,
                do_sample=False,
                eos_token_id=None,
                pad_token_id=0,
            )

    theirs()  # warm-up
    _, compile_s = timed(ours)  # compiles the decoding step
    seconds = {"seqfunc": [], "transformers": []}
    outputs = {}
    for _ in range(args.rounds):
        for name, fn in (("seqfunc", ours), ("transformers", theirs)):
            outputs[name], t = timed(fn)
            seconds[name].append(t)
    identical = torch.equal(outputs["seqfunc"], outputs["transformers"])
    rate = {name: args.tokens / statistics.median(times) for name, times in seconds.items()}

    # -- training step --------------------------------------------------------------------
    tokens = rng.random_bits(rng.key(3), (args.batch, args.seq + 1)) % args.vocab
    batch = {"inputs": tokens[:, :-1].contiguous(), "targets": tokens[:, 1:].contiguous()}
    hf.train()
    contenders = {
        "transformers": hf_train_step(hf),
        "seqfunc compiled": seqfunc_train_step(model, params, compile=True),
        "seqfunc eager": seqfunc_train_step(model, params, compile=False),
    }
    losses = {}
    for name, step in contenders.items():  # warm-up; compiles seqfunc's step
        losses[name], t = timed(lambda step=step: float(step(batch)))
        if name == "seqfunc compiled":
            train_compile_s = t
    step_s = interleaved_seconds_per_step(
        {name: (lambda i, step=step: step(batch)) for name, step in contenders.items()},
        rounds=args.rounds,
        steps=args.steps,
    )

    hf_step = step_s["transformers"].median
    result = {
        "train_step_s": round(step_s["seqfunc compiled"].median, 4),
        "eager_train_step_s": round(step_s["seqfunc eager"].median, 4),
        "hf_train_step_s": round(hf_step, 4),
        "train_speedup": round(hf_step / step_s["seqfunc compiled"].median, 2),
        "eager_train_speedup": round(hf_step / step_s["seqfunc eager"].median, 2),
        "first_losses_equal": abs(losses["transformers"] - losses["seqfunc compiled"]) < 1e-4,
        "tokens_per_s": round(rate["seqfunc"], 1),
        "hf_tokens_per_s": round(rate["transformers"], 1),
        "generation_speedup": round(rate["seqfunc"] / rate["transformers"], 2),
        "identical_tokens": identical,
        "compile_s": {"generate": round(compile_s, 1), "train": round(train_compile_s, 1)},
        "threads": torch.get_num_threads(),
        "cpu": cpu(),
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
    }
    c = model.config
    print(
        f"Llama {c.layers} layers x {c.d_model}, {c.heads} heads / {model.kv_heads} kv heads, "
        f"vocab {c.vocab_size}, fp32; {result['cpu']}, {result['threads']} threads; "
        f"median of {args.rounds} interleaved rounds"
    )
    print(f"training step, batch {args.batch} x {args.seq}:")
    print(f"  {'':<20}{'s/step':>10}{'vs transformers':>18}")
    for name, s in step_s.items():
        print(f"  {name:<20}{s.median:>10.3f}{hf_step / s.median:>17.2f}x")
    print(f"greedy generation with a cache, {args.tokens} tokens after {args.prompt}:")
    print(f"  {'':<20}{'tokens/s':>10}{'vs transformers':>18}")
    for name in ("seqfunc", "transformers"):
        print(f"  {name:<20}{rate[name]:>10.1f}{rate[name] / rate['transformers']:>17.2f}x")
    print(
        f"train {result['train_speedup']}x (goal >= 1.2x), generation "
        f"{result['generation_speedup']}x (goal >= 1.5x); tokens identical: {identical}; "
        f"compiling: generation {compile_s:.1f} s, training step {train_compile_s:.1f} s"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
