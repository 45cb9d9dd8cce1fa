"""Tests of intentbridge.understanding and the `nlu` CLI."""
