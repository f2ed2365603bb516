"""The ``cpp`` backend: streaming dataflow HLS C++ for Vitis, C-simulated bit-exact with plain g++ (see README.md)."""
