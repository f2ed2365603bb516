"""The on-board runtime: numpy only, shipped verbatim in deploy folders."""
