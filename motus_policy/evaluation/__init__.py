"""Evaluation: closed-loop success rates in simulation and open-loop bag replay."""
