"""`python -m chute.entrypoints`: the same as the `chute` command."""

from chute.entrypoints.cli import main

if __name__ == "__main__":  # importing this module (e.g. to check it imports) runs nothing
    raise SystemExit(main())
