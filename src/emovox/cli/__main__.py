"""``python -m emovox.cli``: the same as the ``emovox`` command."""

from emovox.cli import main

main()
