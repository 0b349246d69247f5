"""Generate: synthetic landing batches written exactly as departments deliver them."""
