"""Using trained parameters: decoding (greedy, beam search), sampling with a KV cache,
predictions for every task kind, and translation with BLEU. Pure functions of a model and its
parameters; the run folder is read by :mod:`seqfunc.runs`."""
