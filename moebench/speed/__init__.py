"""`moebench speed`: controlled throughput sweeps that say when a number cannot be trusted.

For each model × prompt length × concurrency: a warm-up, then `--repeats` measured requests
with prompts built to the asked token count (a nonce first, so no prompt cache helps) and
generation forced to `--gen-tokens`. Cells carry prompt and generation tok/s, TTFT, aggregate
tok/s, load time, trust flags and the MoE roofline. Modules: `options` (what was asked),
`prompts` (nonce + filler, calibrated to the server's token counts), `cells` (samples, stats,
flags), `roofline` (active bytes per token, bandwidth), `targets` (placement facts per
backend), `sweep` (the loop), `rows` (store rows and CSV).

Import from the modules (`from moebench.speed.sweep import run_speed`); this package file
imports nothing, so `moebench --help` does not pay for it.
"""
