"""`python -m moebench` runs the CLI."""

from moebench.cli import main

main()
