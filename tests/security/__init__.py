"""Hostile-input and hostile-peer tests (issue 12): each case fails on the code before the fix."""
