"""Mean loss on the assistant tokens of held-out rows (the validation loss, a general held-out loss).

The loss is averaged over tokens (every assistant token counts once, whatever its row's length), with the
same tokenization and masking as training (curate.encoding). Each row's own loss is kept too (`items`: the
row's mean token loss, weighted by its number of assistant tokens), so that two models can be compared row by
row (curate.train.stats.paired): the weighted mean of the per-row differences is the difference of the losses."""

from __future__ import annotations

import math

from curate.numbers import rounded


def assistant_loss(model, tokenizer, rows: list[dict], *, max_length: int = 1024, batch_size: int = 8) -> dict:
    """`{"loss", "perplexity", "tokens", "rows", "rows_without_answer", "items"}` over rows with `text` and
    `assistant_spans`; `items`: `{"loss": {"ids", "values", "weights"}}` (ids: the rows' positions)."""
    from curate.encoding import EncodeStats, encode_rows

    stats = EncodeStats()
    encoded = encode_rows(tokenizer, rows, max_length, stats)
    sums, counts = row_token_losses(model, tokenizer, encoded, batch_size)
    total, count = sum(sums), sum(counts)
    loss = total / count if count else None
    per_row = {"ids": [str(e["idx"]) for e in encoded],
               "values": [rounded(s / c) if c else None for s, c in zip(sums, counts)], "weights": counts}
    return {"loss": rounded(loss), "perplexity": rounded(math.exp(loss)) if loss is not None and loss < 50 else None,
            "tokens": count, "rows": len(encoded), "rows_without_answer": stats.dropped_no_answer,
            "items": {"loss": per_row}}


def row_token_losses(model, tokenizer, encoded: list[dict], batch_size: int) -> tuple[list[float], list[int]]:
    """(sum of the token losses, number of label tokens) of each encoded row, in batches of similar length."""
    import torch
    import torch.nn.functional as F

    from curate.encoding import PaddingCollator

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    collate = PaddingCollator(pad_id=pad)
    device = next(model.parameters()).device
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]["input_ids"]))
    sums, counts = [0.0] * len(encoded), [0] * len(encoded)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for k in range(0, len(order), batch_size):
            idx = order[k:k + batch_size]
            batch = collate([encoded[i] for i in idx])
            batch = {n: t.to(device) for n, t in batch.items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
            shift_logits = logits[:, :-1, :].float()
            shift_labels = batch["labels"][:, 1:]
            loss = F.cross_entropy(shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1),
                                   ignore_index=-100, reduction="none").view(shift_labels.shape)
            for j, i in enumerate(idx):
                sums[i] = float(loss[j].sum())
                counts[i] = int((shift_labels[j] != -100).sum())
    if was_training:
        model.train()
    return sums, counts

