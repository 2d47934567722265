"""Helpers of the fuzz tests (tests/e2e/test_fuzz.py): the contract and upload bodies."""
