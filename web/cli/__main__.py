"""`python -m web.cli`: the same as the `bitesize` console script."""
from web.cli import main

main()
