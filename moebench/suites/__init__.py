"""Stage 1 of the flow: task-suite YAML → validated `Suite`s → `Request`s.

`loader` reads and validates suite files (errors name file, line and field), `rules` holds the
per-field checks, `yaml_lines` parses YAML while remembering the line of every key.
"""
