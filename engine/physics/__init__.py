"""Imaging physics as small forward/adjoint operators (each one AD primitive)."""
