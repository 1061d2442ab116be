"""``python -m modelreg``."""

from modelreg.cli import main

main()
