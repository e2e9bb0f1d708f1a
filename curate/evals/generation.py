"""Greedy generation, and ROUGE-L / BLEU of generated answers against reference answers.

ROUGE-L is rouge-score's F-measure with stemming, averaged over rows (0..1); BLEU is sacrebleu's corpus
BLEU (0..100, its usual scale) with its default tokenizer.
"""

from __future__ import annotations

from curate.errors import CurateError


def generate(model, tokenizer, prompts: list[str], *, max_new_tokens: int, batch_size: int = 8) -> list[str]:
    """Greedy completions of prompt strings (left-padded batches), cut at the end of the turn."""
    import torch

    from curate.templates.render import END_MARKERS
    from curate.encoding import encode_prompt

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    stop = {t for t in (tokenizer.eos_token_id,) if t is not None}
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    stop |= set(gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else [])
    vocab = tokenizer.get_vocab()
    stop |= {vocab[m] for m in END_MARKERS if m in vocab}
    outputs: list[str] = [""] * len(prompts)
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    model.eval()
    with torch.no_grad():
        for k in range(0, len(order), batch_size):
            idx = order[k:k + batch_size]
            n = max(len(encoded[i]) for i in idx)
            ids = torch.full((len(idx), n), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), n), dtype=torch.long)
            for r, i in enumerate(idx):
                e = encoded[i]
                ids[r, n - len(e):] = torch.tensor(e)
                mask[r, n - len(e):] = 1
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new_tokens,
                                 do_sample=False, num_beams=1, pad_token_id=pad, eos_token_id=sorted(stop) or None,
                                 temperature=None, top_p=None, top_k=None)
            for r, i in enumerate(idx):
                text = tokenizer.decode(out[r, n:], skip_special_tokens=False)
                outputs[i] = _cut(text, END_MARKERS, tokenizer)
    return outputs


def _cut(text: str, markers, tokenizer) -> str:
    ends = [text.find(m) for m in markers if m and m in text]
    if ends:
        text = text[: min(ends)]
    for tok in (tokenizer.pad_token, tokenizer.eos_token):
        if tok:
            text = text.replace(tok, "")
    return text.strip()


def text_metrics(hypotheses: list[str], references: list[str]) -> dict:
    """`{"rougeL", "bleu", "items"}`: mean ROUGE-L F1 (0..1) and corpus BLEU (0..100); `items` has each row's
    ROUGE-L (BLEU is a corpus statistic: it has no per-row value to pair)."""
    try:
        import sacrebleu
        from rouge_score import rouge_scorer
    except ImportError as e:  # pragma: no cover - both come with the train extra
        raise CurateError(f"generation metrics need rouge-score and sacrebleu ({e}); pip install 'curate[train]'") from None
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rouge = [scorer.score(ref, hyp)["rougeL"].fmeasure for hyp, ref in zip(hypotheses, references)]
    bleu = sacrebleu.corpus_bleu(hypotheses, [references]).score if hypotheses else None
    return {"rougeL": round(sum(rouge) / len(rouge), 6) if rouge else None,
            "bleu": round(float(bleu), 4) if bleu is not None else None, "items": {"rougeL": rouge}}


def evaluate_generation(model, tokenizer, fmt, rows: list[dict], *, max_new_tokens: int, batch_size: int = 8) -> dict:
    """`{"rougeL", "bleu", "n", "examples"}` for rows whose last assistant turn is the reference."""
    from curate.evals.data import prompt_messages, reference

    prompts = [fmt.prompt(prompt_messages(r)) for r in rows]
    refs = [reference(r) for r in rows]
    hyps = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
    out = text_metrics(hyps, refs)
    out["n"] = len(rows)
    out["examples"] = [{"prompt": prompt_messages(r)[-1]["content"][:300], "output": h[:300], "reference": ref[:300]}
                       for r, h, ref in list(zip(rows, hyps, refs))[:3]]
    return out
