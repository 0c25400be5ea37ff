"""Run geomisuse from a checkout without installing: ``python cli.py ...`` = ``geomisuse ...``."""

from geomisuse.cli import main

if __name__ == "__main__":
    main()
