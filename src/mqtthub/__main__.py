"""``python -m mqtthub`` runs the command-line interface."""

from mqtthub.cli.main import main

main()
