"""mpsim: an agent-based simulator of the WeChat-Alipay mini-program race.

``simulate`` runs one replicate; ``run_scenario`` runs a named scenario's replicates
and writes a results folder; ``load_scenario`` reads a scenario file.
"""

from .agents import MerchantPopulation, UserPopulation
from .model import OUTPUT_NAMES, OUTPUTS, MiniProgramModel, simulate

__all__ = ["MiniProgramModel", "UserPopulation", "MerchantPopulation", "simulate",
           "OUTPUTS", "OUTPUT_NAMES"]
