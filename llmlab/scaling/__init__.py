"""How models scale: tiny decoders trained here, compute arithmetic, scaling-law fits (chapter 14)."""
