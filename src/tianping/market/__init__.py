"""Market and competitor figures, and how our metrics compare with them."""
