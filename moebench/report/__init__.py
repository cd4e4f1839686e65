"""Stage 5 of the flow, store → report: numbers and drawings made from stored samples.

`summary` (per model × task frames and the CSVs), `metrics` (intervals, bootstrap, paired
tests), `compare` (model vs model, run vs run), and the renderers: `terminal` (live progress and
result tables, rich), `tables`, `ollama_tables`, `backends_table`, `html_report` (one offline
file, with `svg_charts` and `assets/`) and `markdown_report`. Nothing here calls a model.
"""
