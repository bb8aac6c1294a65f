"""mpsim: an agent-based simulator of the WeChat-Alipay mini-program race.

``simulate`` runs one replicate and returns its weekly outputs;
``model.scenarios.load`` reads a scenario file; ``model.runner.run_scenario`` runs a
scenario's replicates and writes a results folder; ``model.runner.compare`` compares
scenarios. The ``mpsim`` command (``model/cli.py``) is a thin layer over these.
"""

from .agents import MerchantPopulation, UserPopulation
from .model import OUTPUT_NAMES, OUTPUTS, MiniProgramModel, simulate

__all__ = ["MiniProgramModel", "UserPopulation", "MerchantPopulation", "simulate",
           "OUTPUTS", "OUTPUT_NAMES"]
