"""Multiple-choice accuracy and MAP@3 by the log-likelihood of each option (ARC, MMLU).

The question goes to the model in its chat template; the answer is the option the model finds most likely
as the beginning of its reply:

- `scoring: letter` (default): the user turn is the question with lettered options and "Answer with the
  letter of the correct option." (the `multiple_choice` source format's turn), and each option is scored by
  the log-probability of its letter as the reply. When each letter is one token after the prompt (the usual
  case), one forward pass per question gives all of them.
- `scoring: text`: the user turn is the question alone, and each option is scored by the mean
  log-probability per token of its text as the reply (so long options are not penalised for their length).

Options are ranked by score (ties: the earlier option first). Accuracy: the answer ranks first. MAP@3 (one
correct answer per question, as in Kaggle's LLM Science Exam): 1/rank when the answer ranks in the top 3,
else 0, averaged.
"""

from __future__ import annotations

LETTERS = "ABCDEFGHIJ"


def rank_metrics(scores: list[list[float]], answers: list[int]) -> dict:
    """Accuracy and MAP@3 of per-question option scores (higher = more likely), and `items`: each question's
    accuracy (0/1) and MAP@3 (1/rank in the top 3, else 0), for paired comparisons."""
    acc, map3 = [], []
    for s, a in zip(scores, answers):
        order = sorted(range(len(s)), key=lambda i: (-s[i], i))
        rank = order.index(a) + 1
        acc.append(1.0 if rank == 1 else 0.0)
        map3.append(1.0 / rank if rank <= 3 else 0.0)
    n = len(answers)
    return {"accuracy": round(sum(acc) / n, 6) if n else None, "map@3": round(sum(map3) / n, 6) if n else None,
            "n": n, "items": {"accuracy": acc, "map@3": map3}}


def evaluate_multiple_choice(model, tokenizer, fmt, rows: list[dict], *, scoring: str = "letter",
                             batch_size: int = 8) -> dict:
    """`{"accuracy", "map@3", "n", "chance", "method"}` for rows of the multiple_choice source format."""
    from curate.evals.data import prompt_messages

    prompts, options, answers = [], [], []
    for row in rows:
        meta = row["meta"]
        choices = [str(c) for c in meta["choices"]]
        if scoring == "letter":
            prompts.append(fmt.prompt(prompt_messages(row)))
            options.append([LETTERS[i] for i in range(len(choices))])
        else:
            prompts.append(fmt.prompt([{"role": "user", "content": meta["question"]}]))
            options.append(choices)
        answers.append(int(meta["answer_index"]))
    single = _single_token_ids(tokenizer, prompts, options) if scoring == "letter" else None
    if single is not None:
        scores = _next_token_scores(model, tokenizer, single, batch_size)
        method = "letter log-probability (one token)"
    else:
        scores = _continuation_scores(model, tokenizer, prompts, options, batch_size, mean=scoring == "text")
        method = "letter log-probability" if scoring == "letter" else "mean log-probability per token of the option text"
    out = rank_metrics(scores, answers)
    out["chance"] = round(sum(1 / len(o) for o in options) / len(options), 6) if options else None
    out["method"] = method
    return out


def _single_token_ids(tokenizer, prompts, options):
    """[(prompt ids, [option token id, ...])] when every option adds exactly one token to its prompt, else None."""
    from curate.encoding import encode_prompt

    out = []
    for prompt, opts in zip(prompts, options):
        p = encode_prompt(tokenizer, prompt)
        ids = []
        for o in opts:
            f = encode_prompt(tokenizer, prompt + o)
            if len(f) != len(p) + 1 or f[: len(p)] != p:
                return None
            ids.append(f[-1])
        out.append((p, ids))
    return out


def _next_token_scores(model, tokenizer, items, batch_size: int) -> list[list[float]]:
    import torch

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    scores = []
    model.eval()
    with torch.no_grad():
        for k in range(0, len(items), batch_size):
            chunk = items[k:k + batch_size]
            n = max(len(p) for p, _ in chunk)
            ids = torch.full((len(chunk), n), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), n), dtype=torch.long)
            for i, (p, _) in enumerate(chunk):
                ids[i, : len(p)] = torch.tensor(p)
                mask[i, : len(p)] = 1
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).logits
            for i, (p, opt_ids) in enumerate(chunk):
                logp = torch.log_softmax(logits[i, len(p) - 1].float(), dim=-1)
                scores.append([float(logp[t]) for t in opt_ids])
    return scores


def _continuation_scores(model, tokenizer, prompts, options, batch_size: int, mean: bool) -> list[list[float]]:
    import torch
    import torch.nn.functional as F

    from curate.encoding import PaddingCollator, encode

    texts, spans, owner = [], [], []
    for q, (prompt, opts) in enumerate(zip(prompts, options)):
        for o in opts:
            texts.append(prompt + o)
            spans.append([[len(prompt), len(prompt) + len(o)]])
            owner.append(q)
    encoded = encode(tokenizer, texts, spans, max_length=1 << 30, keep_empty=True)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    collate = PaddingCollator(pad_id=pad)
    device = next(model.parameters()).device
    flat: list[float] = [0.0] * len(encoded)
    model.eval()
    with torch.no_grad():
        for k in range(0, len(encoded), batch_size):
            batch = collate(encoded[k:k + batch_size])
            logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                           use_cache=False).logits[:, :-1].float()
            labels = batch["labels"][:, 1:].to(device)
            nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100,
                                  reduction="none").view(labels.shape)
            counts = (labels != -100).sum(-1).clamp(min=1)
            sums = nll.sum(-1)
            per = (sums / counts) if mean else sums
            for i, v in enumerate(per.tolist()):
                flat[k + i] = -v
    scores: list[list[float]] = [[] for _ in prompts]
    for q, v in zip(owner, flat):
        scores[q].append(v)
    return scores
