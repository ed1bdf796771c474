"""Simulated data sets (placeholder until the simulator lands)."""
import argparse


def add_simulate_arguments(p: argparse.ArgumentParser) -> None:
    p.set_defaults(func=lambda a: (_ for _ in ()).throw(NotImplementedError("simulate")))
