"""Tests of the `pactbond` command line."""
