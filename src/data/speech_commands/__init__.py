"""Google Speech Commands: data module, split protocol (12-class), offline corpus generator."""
