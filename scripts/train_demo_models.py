"""Train, evaluate and save the bundled demo MoE checkpoints (demo-mixtral, demo-dbrx, demo-deepseek).

Each model is a `transformers` MoE class (MixtralForCausalLM, DbrxForCausalLM, DeepseekV2ForCausalLM)
trained from scratch on the seeded synthetic data of `demo_data.py`: cross-entropy on answer tokens
only, plus a Switch/Mixtral-style load-balancing loss computed from the router logits the models
return with `output_router_logits=True`. The result is saved in the family's Hugging Face layout
(bf16 safetensors, config.json, tokenizer.json, tokenizer_config.json with a chat template), then
graded on tasks/demo.yaml with greedy generation and `moebench.scorers.score_text`, next to an
untrained twin (the same architecture at its initial weights); MODEL_CARD.md records it all.

    python scripts/train_demo_models.py --model demo-mixtral --steps 5000 --threads 1  # reproducible
    python scripts/train_demo_models.py --model demo-mixtral --minutes 20 --threads 1  # time budget
    python scripts/train_demo_models.py --model demo-dbrx --eval-only   # re-grade, rewrite the cards
    python scripts/train_demo_models.py --model demo-dbrx --cards       # rewrite cards from eval.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo_data as data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = ROOT / "moebench" / "demo_models"
SUITE_PATH = ROOT / "tasks" / "demo.yaml"
MODEL_NAMES = ("demo-mixtral", "demo-dbrx", "demo-deepseek")
AUX_WEIGHT = 0.01  # load-balancing loss weight (Switch Transformer's value)
INIT_SEED = 7
MAX_POSITIONS = 256


@dataclass
class TrainResult:
    """What a training run did, for the model card."""

    steps: int
    minutes: float
    batch_size: int
    tokens_seen: int
    final_loss: float
    final_aux: float
    cpu_minutes: float  # process CPU time: the budget's unit (wall time depends on the neighbours)


def special_ids(tokenizer: Any) -> dict[str, int]:
    """Token ids of the chat special tokens."""
    return {t: tokenizer.token_to_id(t) for t in data.SPECIAL_TOKENS}


def model_config(name: str, vocab_size: int, ids: dict[str, int]) -> Any:
    """The tiny config of one demo model, in its family's real config class."""
    from transformers import DbrxConfig, DeepseekV2Config, MixtralConfig

    common = dict(vocab_size=vocab_size, pad_token_id=ids[data.PAD], bos_token_id=None,
                  eos_token_id=ids[data.END], tie_word_embeddings=False)
    rope = {"rope_type": "default", "rope_theta": 10000.0}
    if name == "demo-mixtral":
        return MixtralConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=4,
                             num_attention_heads=4, num_key_value_heads=2, num_local_experts=8,
                             num_experts_per_tok=2, max_position_embeddings=MAX_POSITIONS,
                             router_aux_loss_coef=AUX_WEIGHT, rope_parameters=rope, **common)
    if name == "demo-dbrx":
        return DbrxConfig(d_model=128, n_heads=4, n_layers=4, max_seq_len=MAX_POSITIONS,
                          attn_config={"kv_n_heads": 2, "rope_theta": 10000.0, "clip_qkv": 8.0},
                          ffn_config={"ffn_hidden_size": 128, "moe_num_experts": 16, "moe_top_k": 4,
                                      "moe_loss_weight": AUX_WEIGHT},
                          rope_parameters=rope, **common)
    if name == "demo-deepseek":
        return DeepseekV2Config(hidden_size=128, intermediate_size=256, moe_intermediate_size=64,
                                num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
                                n_routed_experts=16, n_shared_experts=2, num_experts_per_tok=4,
                                first_k_dense_replace=1, routed_scaling_factor=1.0,
                                topk_method="greedy", q_lora_rank=None, kv_lora_rank=64,
                                qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32,
                                max_position_embeddings=MAX_POSITIONS, rope_parameters=rope,
                                **common)
    raise SystemExit(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")


def moe_facts(config: Any) -> dict[str, int]:
    """experts, top-k, shared experts and MoE layer count read from a config."""
    if config.model_type == "dbrx":
        ffn = config.ffn_config
        return {"experts": ffn.moe_num_experts, "top_k": ffn.moe_top_k, "shared": 0,
                "moe_layers": config.n_layers}
    if config.model_type == "deepseek_v2":
        return {"experts": config.n_routed_experts, "top_k": config.num_experts_per_tok,
                "shared": config.n_shared_experts,
                "moe_layers": config.num_hidden_layers - config.first_k_dense_replace}
    return {"experts": config.num_local_experts, "top_k": config.num_experts_per_tok, "shared": 0,
            "moe_layers": config.num_hidden_layers}


def build_model(config: Any, seed: int = INIT_SEED) -> Any:
    """A freshly initialised model (the same seed gives the untrained twin)."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def encode_examples(tokenizer: Any, examples: list[data.Example]) -> list[tuple[list[int], int]]:
    """(token ids of prompt + answer + <|end|>, number of prompt tokens) per example."""
    prompts = tokenizer.encode_batch([data.chat_prompt(e.prompt) for e in examples])
    answers = tokenizer.encode_batch([e.answer + data.END for e in examples])
    return [(p.ids + a.ids, len(p.ids)) for p, a in zip(prompts, answers)]


def make_batch(rows: list[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input ids, attention mask and answer-only labels."""
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)  # [B, T]
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (ids, n_prompt) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, n_prompt: len(ids)] = torch.tensor(ids[n_prompt:])
        mask[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def balance_loss(router_logits: tuple[torch.Tensor, ...], top_k: int,
                 mask: torch.Tensor) -> torch.Tensor:
    """Switch/Mixtral aux loss E·Σ_e f_e·P_e per MoE layer, averaged, over non-pad tokens."""
    keep = mask.reshape(-1).bool()  # [B*T]
    losses = []
    for logits in router_logits:
        probs = logits.float().softmax(-1)[keep]  # [N, E]
        chosen = F.one_hot(probs.topk(top_k, dim=-1).indices, probs.shape[-1]).float()  # [N, k, E]
        fraction = chosen.mean(dim=(0, 1))  # [E] share of routing slots per expert
        losses.append(probs.shape[-1] * (fraction * probs.mean(0)).sum())
    return torch.stack(losses).mean()


def lr_at(progress: float, step: int, peak: float, warmup: int = 60) -> float:
    """Linear warmup, then cosine decay to 10% of the peak over `progress` in [0, 1]."""
    cosine = 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return peak * min(1.0, (step + 1) / warmup) * cosine


def loss_on_batch(model: Any, batch: dict[str, torch.Tensor], top_k: int) -> tuple[Any, Any]:
    """(cross-entropy on answer tokens, load-balancing loss) for one batch."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                output_router_logits=True, use_cache=False)
    logits = out.logits[:, :-1].float()  # [B, T-1, V]
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1),
                         ignore_index=-100)
    return ce, balance_loss(out.router_logits, top_k, batch["attention_mask"])


def train(model: Any, rows: list[tuple[list[int], int]], pad_id: int, top_k: int,
          args: argparse.Namespace) -> TrainResult:
    """AdamW on random batches until the time (or step) budget is spent; logs every 50 steps."""
    gen = torch.Generator().manual_seed(data.TRAIN_SEED)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    budget, start, step, tokens = args.minutes * 60.0, time.perf_counter(), 0, 0
    cpu_start = time.process_time()
    ce = aux = torch.tensor(0.0)
    model.train()
    while True:
        elapsed = time.perf_counter() - start
        progress = step / args.steps if args.steps else elapsed / budget
        if progress >= 1.0:
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(progress, step, args.lr)
        picks = torch.randint(len(rows), (args.batch,), generator=gen).tolist()
        batch = make_batch([rows[i] for i in picks], pad_id)
        ce, aux = loss_on_batch(model, batch, top_k)
        opt.zero_grad(set_to_none=True)
        (ce + AUX_WEIGHT * aux).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step, tokens = step + 1, tokens + int(batch["attention_mask"].sum())
        if step % 50 == 0:
            print(f"step {step:5d}  {elapsed / 60:5.1f} min  loss {ce.item():.4f}  aux {aux.item():.3f}"
                  f"  lr {opt.param_groups[0]['lr']:.2e}  {tokens / max(elapsed, 1e-9):,.0f} tok/s",
                  flush=True)
    minutes = (time.perf_counter() - start) / 60.0
    return TrainResult(step, minutes, args.batch, tokens, ce.detach().item(), aux.detach().item(),
                       (time.process_time() - cpu_start) / 60.0)


def save_tokenizer(tokenizer: Any, out: Path) -> None:
    """tokenizer.json plus a tokenizer_config.json carrying the chat template and special tokens."""
    tokenizer.save(str(out / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": MAX_POSITIONS,
        "bos_token": None, "eos_token": data.END, "pad_token": data.PAD, "unk_token": None,
        "additional_special_tokens": [data.USER, data.ASSISTANT, data.SYSTEM],
        "clean_up_tokenization_spaces": False, "chat_template": data.CHAT_TEMPLATE,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def save_checkpoint(model: Any, tokenizer: Any, out: Path) -> None:
    """bf16 safetensors in the family's Hub layout, generation config, tokenizer files."""
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config.eos_token_id = model.config.eos_token_id
    model.generation_config.pad_token_id = model.config.pad_token_id
    model.to(torch.bfloat16).save_pretrained(out)
    save_tokenizer(tokenizer, out)


def load_suite(path: Path = SUITE_PATH) -> list[dict[str, Any]]:
    """The demo suite's tasks with rendered prompts per case (the suite loader's rules, simply)."""
    import yaml

    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    tasks = []
    for task in doc["tasks"]:
        spec = task["scorer"] if isinstance(task["scorer"], dict) else {"type": task["scorer"]}
        cases = [{**case, "_prompt": case.get("prompt") or task["prompt"].format(**case)}
                 for case in task["cases"]]
        tasks.append({"name": task["name"], "scorer": spec, "cases": cases})
    return tasks


@torch.no_grad()
def greedy(model: Any, ids: list[int], max_new: int, eos: int) -> list[int]:
    """Greedy decoding with the model's KV cache; new token ids only (eos dropped)."""
    out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                         max_new_tokens=max_new, do_sample=False, eos_token_id=eos,
                         pad_token_id=model.config.pad_token_id)
    new = out[0, len(ids):].tolist()
    return new[: new.index(eos)] if eos in new else new


def evaluate(model: Any, tokenizer: Any, max_new: int = 48) -> dict[str, dict[str, float]]:
    """Per task of tasks/demo.yaml: accuracy (passed share) and mean score, greedy decoding."""
    from moebench.scorers import score_text
    from moebench.types import ScorerSpec

    model.eval()
    eos, results = tokenizer.token_to_id(data.END), {}
    for task in load_suite():
        params = {k: v for k, v in task["scorer"].items() if k != "type"}
        spec = ScorerSpec(task["scorer"]["type"], params)
        scores = []
        for case in task["cases"]:
            ids = tokenizer.encode(data.chat_prompt(case["_prompt"])).ids
            text = tokenizer.decode(greedy(model, ids, max_new, eos))
            fields = {k: v for k, v in case.items() if k != "_prompt"}
            scores.append(score_text(spec, text, fields))
        results[task["name"]] = {"accuracy": sum(s.passed for s in scores) / len(scores),
                                 "mean_score": sum(s.score for s in scores) / len(scores)}
    return results


@torch.no_grad()
def expert_load(model: Any, tokenizer: Any, top_k: int) -> list[dict[str, Any]]:
    """Per MoE layer: routing slots per expert over the suite's prompt+answer tokens, and their CV."""
    model.eval()
    rows = encode_examples(tokenizer, data.suite_examples())
    batch = make_batch(rows, tokenizer.token_to_id(data.PAD))
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                output_router_logits=True, use_cache=False)
    keep = batch["attention_mask"].reshape(-1).bool()
    layers = []
    for logits in out.router_logits:
        chosen = logits.float()[keep].topk(top_k, dim=-1).indices.reshape(-1)  # [N*k]
        counts = torch.bincount(chosen, minlength=logits.shape[-1]).float()  # [E]
        cv = (counts.std(unbiased=False) / counts.mean()).item()
        layers.append({"counts": [int(c) for c in counts], "cv": round(cv, 3)})
    return layers


def param_counts(model: Any, facts: dict[str, int]) -> tuple[int, int]:
    """(total, active per token) parameters; routed-expert weights count k/E towards active."""
    total = sum(p.numel() for p in model.parameters())
    routed = sum(p.numel() for n, p in model.named_parameters()
                 if ".experts." in n and "shared" not in n)
    return total, total - round(routed * (facts["experts"] - facts["top_k"]) / facts["experts"])


def _score_tables(name: str, reports: dict[str, dict[str, Any]]) -> list[str]:
    """This model's accuracy and mean score per task, then all demo models side by side."""
    scores = reports[name]["scores"]
    lines = ["| task | accuracy | mean score | untrained twin accuracy | twin mean score |",
             "|---|---|---|---|---|"]
    for task, got in scores["trained"].items():
        base = scores["untrained"][task]
        lines.append(f"| {task} | {got['accuracy']:.0%} | {got['mean_score']:.2f} "
                     f"| {base['accuracy']:.0%} | {base['mean_score']:.2f} |")
    tasks = list(scores["trained"])
    lines += ["", "All demo models (accuracy, trained / untrained twin):", "",
              "| model | " + " | ".join(tasks) + " |", "|---" * (len(tasks) + 1) + "|"]
    for other, report in sorted(reports.items(), key=lambda kv: MODEL_NAMES.index(kv[0])):
        got, base = report["scores"]["trained"], report["scores"]["untrained"]
        lines.append(f"| {other} | " + " | ".join(
            f"{got[t]['accuracy']:.0%} / {base[t]['accuracy']:.0%}" for t in tasks) + " |")
    return lines


def _load_table(load: list[dict[str, Any]], twin: list[dict[str, Any]]) -> list[str]:
    """Per MoE layer: CV of the trained model, CV of the untrained twin, trained slot counts."""
    lines = ["| MoE layer | CV (trained) | CV (untrained twin) | slots per expert (trained) |",
             "|---|---|---|---|"]
    twin_cv = [f"{layer['cv']:.2f}" for layer in twin] or ["–"] * len(load)
    return lines + [f"| {i} | {layer['cv']:.2f} | {cv} | {' '.join(map(str, layer['counts']))} |"
                    for i, (layer, cv) in enumerate(zip(load, twin_cv))]


def _stages(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The training records from the first (from scratch) to this one, via `previous`."""
    chain = [run]
    while chain[-1].get("previous"):
        chain.append(chain[-1]["previous"])
    return chain[::-1]


def _stage_line(i: int, stage: dict[str, Any], name: str, final: bool) -> str:
    lr = stage.get("lr", 3e-3)
    what = (f"{stage['steps']:,} steps, batch {stage['batch_size']}, peak LR {lr:g}, "
            f"{stage['tokens_seen']:,} tokens, {stage['minutes']:.1f} min wall"
            + (f" ({stage['cpu_minutes']:.1f} CPU-min)" if "cpu_minutes" in stage else ""))
    if i == 0 and not final:
        return (f"{i + 1}. STAGE1 = {stage['init_from']}: from scratch by that commit's script on "
                f"its data (comma-separated word lists), {what}")
    init = f" --init STAGE{i}" if i else ""
    out = "" if final else f" --out STAGE{i + 1}"
    where = f" with the scripts of git {stage['script_commit']}" if "script_commit" in stage else ""
    return (f"{i + 1}. {what}{where}: `OMP_NUM_THREADS=1 python scripts/train_demo_models.py --model "
            f"{name}{init} --steps {stage['steps']} --batch {stage['batch_size']} --lr {lr:g} "
            f"--threads 1{out}`")


def _training_lines(name: str, run: dict[str, Any]) -> list[str]:
    """How the checkpoint was trained, stage by stage, and the commands that reproduce it."""
    stages = _stages(run)
    start = "Trained in stages" if len(stages) > 1 else "Trained from scratch"
    lines = [
        f"{start} by `scripts/train_demo_models.py` on the seeded synthetic data of "
        f"`scripts/demo_data.py` (seed {data.TRAIN_SEED}, {data.TRAIN_PER_FAMILY:,} examples per "
        "family: word lists numbered down to 1, one-step arithmetic word problems, quantity "
        "extraction, one-sentence summaries, and two training-only drills: the countdown "
        "`List 3 of these words: …` and, from the `after` stage on, `List 2 words with 4 "
        "letters after rain.`, which starts a list anywhere in its vocabulary); a stage "
        "continued with `--init` keeps its tokenizer. Loss: cross-entropy on answer tokens only + "
        f"{AUX_WEIGHT} × Switch/Mixtral load-balancing loss (E·Σ f·P from the router logits, every "
        "MoE layer). AdamW, warmup then cosine decay, 1 CPU thread of a shared 2-core machine; "
        f"fixed seeds (data {data.TRAIN_SEED}, init {INIT_SEED}, batches {data.TRAIN_SEED}).", "",
    ]
    lines += [_stage_line(i, stage, name, i == len(stages) - 1) for i, stage in enumerate(stages)]
    return lines + ["", f"- final batch loss: {run['final_loss']:.3f} (answer tokens), "
                        f"aux {run['final_aux']:.3f} (1.0 = perfectly balanced)"]


def write_card(out: Path, name: str, reports: dict[str, dict[str, Any]]) -> None:
    """MODEL_CARD.md: what the model is, how it was trained, what it scores, how it routes."""
    report, facts = reports[name], reports[name]["facts"]
    size_mb = sum(f.stat().st_size for f in out.glob("*.safetensors")) / 1e6
    run = json.loads((out / "training.json").read_text())
    lines = [
        f"# {name}", "",
        "**A demo, not a language model.** A tiny Mixture-of-Experts checkpoint bundled with moebench "
        "so `moebench run` works without Ollama. It only knows the four synthetic task families of "
        "`tasks/demo.yaml`, in the simplified form it was trained on; do not judge MoE quality by it.", "",
        f"- family: `{report['model_type']}` (`{report['class']}` in transformers; Hugging Face layout)",
        f"- routed experts: {facts['experts']}, top-{facts['top_k']}, shared experts: {facts['shared']}, "
        f"MoE layers: {facts['moe_layers']}",
        f"- parameters: {report['params'][0]:,} total, {report['params'][1]:,} active per token; "
        f"weights {size_mb:.1f} MB (bf16 safetensors)",
        f"- tokenizer: byte-level BPE, {report['vocab_size']} tokens, digits split; chat template "
        "`<|user|>{prompt}\\n<|assistant|>{answer}<|end|>`",
        "", "## Training", "", *_training_lines(name, run),
        "", "## Accuracy on tasks/demo.yaml", "",
        "Held-out prompts, greedy decoding with transformers (fp32), graded by moebench's scorers. "
        "The untrained twin is the same architecture at its initial weights (same seed). The "
        "word_length cases ask for (count, letters) pairs never seen in training, so they test "
        "whether the model learned to count. It answers with a list numbered down from `count` "
        "(`3. apple`, `2. house`, `1. water`), which lets a model this small stop after `1.`; "
        "an ascending `1. 2. 3.` list stayed at 10–14% (it memorises list lengths per pair). "
        "The `after` drill (lists that start anywhere in the vocabulary, never on a held-out "
        "pair) took word_length from 67 / 52 / 33% (mixtral / dbrx / deepseek) to 81 / 86 / 76% "
        "in one 1,000-step stage: the models had picked each word by its place in the list, "
        "not from the word before it, and no trained list reached some words' places.", "",
    ]
    lines += _score_tables(name, reports)
    lines += ["", "## Expert load", "",
              "Routing slots (token × top-k) per expert on the suite's prompt + answer tokens; "
              "CV = std / mean across experts (0 = perfectly even), for the trained model and "
              "its untrained twin.", ""]
    lines += _load_table(report["expert_load"], report.get("twin_expert_load", []))
    (out / "MODEL_CARD.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_cards(models_dir: Path = MODELS_DIR) -> None:
    """Rewrite the card of every demo model that has an eval.json (the tables compare them all)."""
    reports = {p.parent.name: json.loads(p.read_text())
               for p in sorted(models_dir.glob("demo-*/eval.json"))}
    for name in reports:
        write_card(models_dir / name, name, reports)


def evaluate_checkpoint(out: Path, name: str, tokenizer: Any) -> dict[str, Any]:
    """Grade the saved checkpoint and its untrained twin; the facts the model card needs."""
    from transformers import AutoModelForCausalLM

    trained = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    twin = build_model(trained.config)
    facts = moe_facts(trained.config)
    scores = {"trained": evaluate(trained, tokenizer), "untrained": evaluate(twin, tokenizer)}
    return {"model": name, "class": type(trained).__name__, "model_type": trained.config.model_type,
            "facts": facts, "params": param_counts(trained, facts),
            "vocab_size": trained.config.vocab_size, "scores": scores,
            "expert_load": expert_load(trained, tokenizer, facts["top_k"]),
            "twin_expert_load": expert_load(twin, tokenizer, facts["top_k"])}


def initial_model(args: argparse.Namespace, tokenizer: Any) -> tuple[Any, dict[str, Any] | None]:
    """A fresh model, or (--init) a saved checkpoint to continue from and its training.json."""
    if args.init is None:
        return build_model(model_config(args.model, tokenizer.get_vocab_size(),
                                        special_ids(tokenizer))), None
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(args.init, dtype=torch.float32)
    previous = json.loads((args.init / "training.json").read_text())
    return model, {**previous, "init_from": args.init_note or str(args.init)}


def run(args: argparse.Namespace) -> None:
    """Train (unless --eval-only), save, evaluate against the untrained twin, write the cards."""
    torch.set_num_threads(args.threads)
    out = args.out or MODELS_DIR / args.model
    if args.cards:
        return write_cards(out.parent)
    train_set = data.training_examples()
    saved = args.init if args.init is not None else out if args.eval_only else None
    if saved is not None:  # a checkpoint's own tokenizer: its token ids must not move
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(saved / "tokenizer.json"))
    else:
        tokenizer = data.build_tokenizer(data.chat_prompt(e.prompt) + e.answer + data.END
                                         for e in train_set)
    if not args.eval_only:
        model, previous = initial_model(args, tokenizer)
        print(f"{args.model}: {sum(p.numel() for p in model.parameters()):,} params", flush=True)
        result = train(model, encode_examples(tokenizer, train_set), model.config.pad_token_id,
                       moe_facts(model.config)["top_k"], args)
        save_checkpoint(model, tokenizer, out)
        record = {**result.__dict__, "lr": args.lr, **({"previous": previous} if previous else {})}
        (out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    report = evaluate_checkpoint(out, args.model, tokenizer)
    print(json.dumps(report["scores"], indent=2))
    (out / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    write_cards(out.parent)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODEL_NAMES, required=True)
    parser.add_argument("--minutes", type=float, default=20.0, help="training time budget")
    parser.add_argument("--steps", type=int, default=0, help="train exactly N steps instead")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--out", type=Path, help="checkpoint folder (default: the bundled one)")
    parser.add_argument("--init", type=Path,
                        help="continue training this checkpoint (keeps its tokenizer)")
    parser.add_argument("--init-note", help="how the card names the --init checkpoint")
    parser.add_argument("--eval-only", action="store_true", help="re-grade and rewrite the cards")
    parser.add_argument("--cards", action="store_true",
                        help="only rewrite every MODEL_CARD.md from the stored eval.json files")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
