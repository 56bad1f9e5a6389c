"""The paper's analyses: figures, layer responses, gradient flow."""
