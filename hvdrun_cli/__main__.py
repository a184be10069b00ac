"""``python -m hvdrun_cli`` is the same as ``hvdjob``."""
from hvdrun_cli.cli.main import main

main()
