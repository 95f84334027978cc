"""`python -m peft_cli`: the same as the `peft` command."""

from .main import main

main()
