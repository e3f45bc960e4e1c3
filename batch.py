#!/usr/bin/env python3
"""Entry point: `python batch.py --help`. All the work is in the kbang_egov package."""

from kbang_egov.cli import main

if __name__ == "__main__":
    main()
