"""``python -m nas`` = the ``nas`` command."""

from nas.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
