"""``python -m edgekd`` (what ``torchrun -m edgekd distill ...`` runs)."""

from .cli import main

main()
