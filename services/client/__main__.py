"""``python -m plexzoom.client``: the plexzoom command."""

from plexzoom.client.cli import main

main(prog_name="plexzoom")
