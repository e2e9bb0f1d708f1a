"""The model scorers' forward passes (not a step): summed token losses over spans, next-token
log-probabilities and classifier logits, each batched and cached through `lm_batches`.

Only the hidden states at scored positions go through the output layer, so the vocabulary projection
is not paid for prompt tokens. (That split is checked against the model's own `logits` once per model;
a model whose head does something else, such as logit soft-capping, falls back to the full forward.)
"""

from __future__ import annotations

from curate.steps.score.lm_batches import ScoreCache, default_batch_tokens, run_cached, stats


def span_losses(model, requests: list[tuple[list[int], list[tuple[int, int]]]], *, cache: ScoreCache,
                batch_tokens: int | None, batch_size: int, pad_id: int, desc: str = "scoring") -> list[list[tuple[float, int]]]:
    """For each (ids, spans): per span, (summed NLL of the tokens at positions [a, b), count)."""
    keys = [cache.key("nll", ids, [list(s) for s in spans]) for ids, spans in requests]
    lengths = [len(ids) for ids, _ in requests]

    def compute(batch: list[int]):
        return _nll_batch(model, [requests[i] for i in batch], pad_id)

    bt = batch_tokens or default_batch_tokens(model)
    return [[tuple(x) for x in v] for v in run_cached(keys, lengths, compute, cache, batch_tokens=bt,
                                                      batch_size=batch_size, desc=desc)]


def next_token_logprobs(model, sequences: list[list[int]], candidates: list[int], *, cache: ScoreCache,
                        batch_tokens: int | None, batch_size: int, pad_id: int, desc: str = "judging") -> list[list[float]]:
    """For each sequence, the log-probabilities of the `candidates` as the next token."""
    keys = [cache.key("next", ids, candidates) for ids in sequences]

    def compute(batch: list[int]):
        return _next_batch(model, [sequences[i] for i in batch], candidates, pad_id)

    bt = batch_tokens or default_batch_tokens(model)
    return run_cached(keys, [len(s) for s in sequences], compute, cache, batch_tokens=bt,
                      batch_size=batch_size, desc=desc)


def classifier_logits(model, sequences: list[list[int]], *, cache: ScoreCache, batch_tokens: int | None,
                      batch_size: int, pad_id: int, desc: str = "rewarding") -> list[list[float]]:
    """For each sequence, the classifier's logits (all labels)."""
    keys = [cache.key("cls", ids, None) for ids in sequences]

    def compute(batch: list[int]):
        return _cls_batch(model, [sequences[i] for i in batch], pad_id)

    bt = batch_tokens or default_batch_tokens(model)
    return run_cached(keys, [len(s) for s in sequences], compute, cache, batch_tokens=bt,
                      batch_size=batch_size, desc=desc)


# -- the forward passes ----------------------------------------------------------------------------


def _pad(model, seqs: list[list[int]], pad_id: int):
    import torch

    device = next(model.parameters()).device
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[r, : len(s)] = 1
    return ids.to(device), mask.to(device)


def forward_hidden(model, ids, mask):
    """Last hidden states of the decoder (final norm applied), [batch, length, hidden]. One place
    every causal-LM forward goes through (tests count calls here).

    No attention mask is passed: padding is on the right, so under the causal mask no real token
    attends to a pad, and without an explicit mask SDPA keeps its fused causal kernel (with one, CPU
    attention falls back to the O(n^2)-memory math path, which made batches slower than single rows).
    Outputs at pad positions are garbage and never read. `mask` is kept for models that need one.
    """
    stats["forward_batches"] += 1
    return model.base_model(input_ids=ids, use_cache=False).last_hidden_state


def forward_logits(model, ids, mask):
    stats["forward_batches"] += 1
    return model(input_ids=ids, use_cache=False).logits


def head_split_ok(model) -> bool:
    """Whether `output_embeddings(base_model(x))` reproduces `model(x).logits` (checked once per model)."""
    import torch

    ok = getattr(model, "_curate_head_split_ok", None)
    if ok is not None:
        return ok
    head = model.get_output_embeddings()
    base = getattr(model, "base_model", None)
    ok = False
    if head is not None and base is not None and base is not model:
        vocab = int(model.config.get_text_config().vocab_size)
        device = next(model.parameters()).device
        x = (torch.arange(16, device=device) * 7919 % vocab).unsqueeze(0)
        with torch.inference_mode():
            try:
                split = head(base(input_ids=x, use_cache=False).last_hidden_state).float()
                full = model(input_ids=x, use_cache=False).logits.float()
                ok = split.shape == full.shape and torch.allclose(split, full, rtol=1e-3, atol=1e-3 * float(full.abs().max()) + 1e-5)
            except Exception:  # noqa: BLE001 - any surprise means: use the model's own forward
                ok = False
    model._curate_head_split_ok = ok
    return ok


def _nll_batch(model, requests, pad_id: int) -> list[list[list]]:
    import torch
    import torch.nn.functional as F

    seqs = [ids for ids, _ in requests]
    ids, mask = _pad(model, seqs, pad_id)
    rows, pos, seg = [], [], []
    n_spans = 0
    for r, (_, spans) in enumerate(requests):
        for a, b in spans:
            rows += [r] * (b - a)
            pos += list(range(a, b))
            seg += [n_spans] * (b - a)
            n_spans += 1
    device = ids.device
    rows_t = torch.tensor(rows, dtype=torch.long, device=device)
    pos_t = torch.tensor(pos, dtype=torch.long, device=device)
    seg_t = torch.tensor(seg, dtype=torch.long, device=device)
    labels = ids[rows_t, pos_t]
    nll = torch.empty(len(pos), dtype=torch.float32, device=device)
    chunk = 1024
    with torch.inference_mode():
        if head_split_ok(model):
            hidden = forward_hidden(model, ids, mask)
            h = hidden[rows_t, pos_t - 1]
            head = model.get_output_embeddings()
            for s in range(0, len(pos), chunk):
                logits = head(h[s : s + chunk]).float()
                nll[s : s + chunk] = F.cross_entropy(logits, labels[s : s + chunk], reduction="none")
        else:
            logits = forward_logits(model, ids, mask)
            for s in range(0, len(pos), chunk):
                sel = logits[rows_t[s : s + chunk], pos_t[s : s + chunk] - 1].float()
                nll[s : s + chunk] = F.cross_entropy(sel, labels[s : s + chunk], reduction="none")
        sums = torch.zeros(n_spans, dtype=torch.float64, device=device).index_add_(0, seg_t, nll.double())
    counts = torch.bincount(seg_t, minlength=n_spans).tolist() if len(seg) else [0] * n_spans
    sums = sums.tolist()
    out, s = [], 0
    for _, spans in requests:
        out.append([[sums[s + j], counts[s + j]] for j in range(len(spans))])
        s += len(spans)
    return out


def _next_batch(model, seqs, candidates: list[int], pad_id: int) -> list[list[float]]:
    import torch

    ids, mask = _pad(model, seqs, pad_id)
    last = torch.tensor([len(s) - 1 for s in seqs], device=ids.device)
    rows = torch.arange(len(seqs), device=ids.device)
    cand = torch.tensor(candidates, device=ids.device)
    with torch.inference_mode():
        if head_split_ok(model):
            hidden = forward_hidden(model, ids, mask)
            logits = model.get_output_embeddings()(hidden[rows, last]).float()
        else:
            logits = forward_logits(model, ids, mask)[rows, last].float()
        logp = torch.log_softmax(logits, dim=-1)[:, cand]
    return logp.double().tolist()


def _cls_batch(model, seqs, pad_id: int) -> list[list[float]]:
    import torch

    ids, mask = _pad(model, seqs, pad_id)
    with torch.inference_mode():
        stats["forward_batches"] += 1
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
    return logits.double().tolist()
