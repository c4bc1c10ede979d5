"""Motus network, scheduler and sampler (torch; imported only by the backend and training)."""

from motus_policy.model.configuration_motus import PRESETS, MotusConfig
from motus_policy.model.modeling_motus import MotusConditioning, MotusModel, MotusOutput

__all__ = ["PRESETS", "MotusConditioning", "MotusConfig", "MotusModel", "MotusOutput"]
