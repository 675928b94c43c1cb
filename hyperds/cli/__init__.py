"""The `hyperds` command line (argparse; `hyperds.cli.main:main` is the entry point). Internal modules."""

__all__: list[str] = []
